//! A clinic's webhook endpoints (issue 22), for its admins: made only for
//! a URL that may be reached (https; every address its host resolves to
//! public — `shared/webhooks`), at most `WEBHOOK_MAX_ENDPOINTS` a clinic;
//! the signing secret made here, shown once, kept sealed under KMS
//! (purpose `webhook-secret`, bound to clinic and endpoint).

use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_domain::Rejected;
use vcare_domain::webhooks::Secret;
use vcare_domain::webhooks::endpoint::{Endpoint, EndpointRequest};
use vcare_runtime::{Env, Error};
use vcare_store::{EndpointCreated, WebhookStore};

use crate::NotifyError;

pub const SECRET_PURPOSE: &str = "webhook-secret";

/// `WEBHOOK_ALLOW_LOOPBACK`: `true` or `false` (the default).
pub fn allow_loopback(env: &Env) -> Result<bool, Error> {
    match env.get("WEBHOOK_ALLOW_LOOPBACK").unwrap_or("false") {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("WEBHOOK_ALLOW_LOOPBACK: true or false".into()),
    }
}

pub struct WebhookEndpoints {
    store: WebhookStore,
    kms: aws_sdk_kms::Client,
    key_id: String,
    /// `WEBHOOK_ALLOW_LOOPBACK`: loopback endpoints (and plain http to
    /// them), for the local stack and tests; false in the template.
    pub allow_loopback: bool,
    max_endpoints: usize,
}

impl WebhookEndpoints {
    /// `TABLE_NAME`, `DATA_KEY_ID`, `WEBHOOK_ALLOW_LOOPBACK` (false),
    /// `WEBHOOK_MAX_ENDPOINTS` (10, 1 to 100).
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, Error> {
        let allow_loopback = allow_loopback(env)?;
        Ok(Self {
            store: WebhookStore::new(aws_sdk_dynamodb::Client::new(sdk), env.required("TABLE_NAME")?),
            kms: aws_sdk_kms::Client::new(sdk),
            key_id: env.required("DATA_KEY_ID")?,
            allow_loopback,
            max_endpoints: env.bounded("WEBHOOK_MAX_ENDPOINTS", 10, 1, 100)?,
        })
    }

    /// A new endpoint and its secret (to be shown this once).
    pub async fn create(
        &self,
        clinic: &str,
        request: EndpointRequest,
        now: DateTime<Utc>,
    ) -> Result<(Endpoint, Secret), NotifyError> {
        let (url, event_types) = request.validate(self.allow_loopback)?;
        vcare_webhooks::check_endpoint(&url, self.allow_loopback).await.map_err(|r| Rejected::Invalid(r.describe()))?;
        let mut bytes = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| NotifyError::Unavailable)?;
        let secret = Secret::from_bytes(bytes).ok_or(NotifyError::Unavailable)?;
        let endpoint_id = vcare_domain::ids::prefixed("whe");
        let purpose = format!("{SECRET_PURPOSE}:{clinic}:{endpoint_id}");
        let sealed =
            vcare_crypto::encrypt_secret(&self.kms, &self.key_id, secret.bytes(), &purpose).await.map_err(|e| {
                tracing::error!(error = %e, "sealing a webhook secret failed");
                NotifyError::Unavailable
            })?;
        let endpoint = Endpoint {
            endpoint_id,
            clinic_id: clinic.to_owned(),
            url,
            event_types,
            sealed_secret: sealed,
            enabled: true,
            disabled_reason: None,
            created_at: now,
            failing_since: None,
        };
        match self.store.create(&endpoint, self.max_endpoints).await? {
            EndpointCreated::Created => Ok((endpoint, secret)),
            EndpointCreated::AtLimit => Err(Rejected::Impossible(format!(
                "a clinic has at most {} webhook endpoints; delete one first",
                self.max_endpoints
            ))
            .into()),
        }
    }

    pub async fn list(&self, clinic: &str) -> Result<Vec<Endpoint>, NotifyError> {
        Ok(self.store.list(clinic).await?)
    }

    pub async fn get(&self, clinic: &str, id: &str) -> Result<Option<Endpoint>, NotifyError> {
        Ok(self.store.get(clinic, id).await?)
    }

    /// `false`: there was none.
    pub async fn delete(&self, clinic: &str, id: &str) -> Result<bool, NotifyError> {
        Ok(self.store.delete(clinic, id).await?)
    }
}
