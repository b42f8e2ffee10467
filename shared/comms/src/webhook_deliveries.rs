//! Webhook deliveries (issue 22). The webhook consumer of the domain-events
//! topic hands each event to [`WebhookDeliveries::fan_out`]: one delivery
//! record per enabled endpoint of the clinic that wants the type (the same
//! event again is the same delivery), and a message on the delivery queue.
//! [`WebhookDeliveries::deliver`] tries one: signed, through the SSRF-safe
//! sender; a failure is put back on the queue with the schedule's delay
//! (longer than SQS's 15 minutes: carried in the message, re-delayed until
//! due), given up after ~24 h; a 410 or 5 days without a success disables
//! the endpoint, with `communication.webhook.endpoint_disabled`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_domain::events::{DomainEvent, WEBHOOK_ENDPOINT_DISABLED};
use vcare_domain::webhooks::Secret;
use vcare_domain::webhooks::delivery::{
    DeliveryRecord, DeliveryState, EndpointChange, Tried, after_try, delivery_id, wants_try,
};
use vcare_domain::webhooks::endpoint::Endpoint;
use vcare_runtime::{Clock, Env, Error};
use vcare_store::WebhookStore;
use vcare_webhooks::{Delivery, Outcome, Sender};

use crate::webhooks::SECRET_PURPOSE;

/// The delivery queue's message: ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryMessage {
    pub clinic_id: String,
    pub endpoint_id: String,
    pub delivery_id: String,
    pub due: DateTime<Utc>,
    /// How many tries the delivery had when this was queued: a copy, or a
    /// message overtaken by a try or a redelivery, is dropped.
    pub tries: usize,
}

/// How many endpoints' opened secrets a container keeps.
const SECRETS_KEPT: usize = 1_000;

/// SQS's longest message delay.
const MAX_DELAY_SECONDS: u64 = 900;

pub struct WebhookDeliveries {
    store: WebhookStore,
    kms: aws_sdk_kms::Client,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    sender: Sender,
    /// Opened secrets by endpoint and sealed text: one KMS `Decrypt` per
    /// endpoint a container, not one a try (a secret replaced is a new key).
    secrets: std::sync::Mutex<std::collections::HashMap<String, Secret>>,
    pub clock: Clock,
}

impl WebhookDeliveries {
    /// `TABLE_NAME`, `WEBHOOK_DELIVERY_QUEUE_URL`, `WEBHOOK_ALLOW_LOOPBACK`
    /// (false), `WEBHOOK_TIMEOUT_MS` (10,000).
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, Error> {
        let allow_loopback = crate::webhooks::allow_loopback(env)?;
        let timeout = std::time::Duration::from_millis(env.bounded("WEBHOOK_TIMEOUT_MS", 10_000, 500, 20_000)?);
        Ok(Self {
            store: WebhookStore::new(aws_sdk_dynamodb::Client::new(sdk), env.required("TABLE_NAME")?),
            kms: aws_sdk_kms::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            queue_url: env.required("WEBHOOK_DELIVERY_QUEUE_URL")?,
            sender: Sender::new(allow_loopback, timeout),
            secrets: std::sync::Mutex::default(),
            clock: Clock::system(),
        })
    }

    async fn enqueue(&self, message: &DeliveryMessage, now: DateTime<Utc>) -> Result<(), Error> {
        // Rounded up: a try is never made before it is due.
        let millis = u64::try_from((message.due - now).num_milliseconds()).unwrap_or(0);
        let delay = millis.div_ceil(1000).min(MAX_DELAY_SECONDS) as i32;
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(serde_json::to_string(message)?)
            .delay_seconds(delay)
            .send()
            .await
            .map_err(|e| Error::from(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }

    /// One published event: a delivery for each endpoint that wants it.
    /// Answers how many were queued.
    pub async fn fan_out(&self, event: &Value) -> Result<usize, Error> {
        let (Some(id), Some(kind), Some(clinic)) =
            (event["id"].as_str(), event["type"].as_str(), event["clinicid"].as_str())
        else {
            return Err("not a CloudEvent with id, type and clinicid".into());
        };
        let now = self.clock.now();
        let happened = event["time"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or(now, |t| t.with_timezone(&Utc));
        let body = vcare_domain::webhooks::payload(event).to_string();
        let mut queued = 0;
        for endpoint in self.store.list(clinic).await?.into_iter().filter(|e| e.wants(kind)) {
            let record = DeliveryRecord {
                delivery_id: delivery_id(id, &endpoint.endpoint_id, happened),
                clinic_id: clinic.to_owned(),
                endpoint_id: endpoint.endpoint_id.clone(),
                event_id: id.to_owned(),
                event_type: kind.to_owned(),
                body: body.clone(),
                state: DeliveryState::Pending,
                tries: Vec::new(),
                created_at: now,
                next_at: Some(now),
            };
            // There already (the event again: SQS's at-least-once, a replay,
            // a fan-out that died before its message): queued only if it
            // was never tried, the case of the fan-out that died.
            if !self.store.add_delivery(&record).await? {
                let kept = self.store.delivery(clinic, &endpoint.endpoint_id, &record.delivery_id).await?;
                if !kept.is_some_and(|k| wants_try(&k, 0)) {
                    continue;
                }
            }
            let message = DeliveryMessage {
                clinic_id: clinic.to_owned(),
                endpoint_id: endpoint.endpoint_id,
                delivery_id: record.delivery_id,
                due: now,
                tries: 0,
            };
            self.enqueue(&message, now).await?;
            queued += 1;
        }
        Ok(queued)
    }

    /// An endpoint's signing secret, opened under its clinic and endpoint.
    async fn secret(&self, endpoint: &Endpoint) -> Result<Secret, Error> {
        let purpose = format!("{SECRET_PURPOSE}:{}:{}", endpoint.clinic_id, endpoint.endpoint_id);
        let key = format!("{purpose}:{}", endpoint.sealed_secret);
        if let Some(secret) = self.secrets.lock().map_err(|_| "the secret cache is poisoned")?.get(&key) {
            return Ok(secret.clone());
        }
        let bytes = vcare_crypto::decrypt_secret(&self.kms, &endpoint.sealed_secret, &purpose).await?;
        let secret = Secret::from_bytes(bytes).ok_or("the endpoint's secret is malformed")?;
        let mut kept = self.secrets.lock().map_err(|_| "the secret cache is poisoned")?;
        if kept.len() >= SECRETS_KEPT {
            kept.clear();
        }
        kept.insert(key, secret.clone());
        Ok(secret)
    }

    /// One try of a delivery (or, not yet due, its message delayed again).
    pub async fn deliver(&self, message: &DeliveryMessage) -> Result<(), Error> {
        let now = self.clock.now();
        if message.due > now {
            return self.enqueue(message, now).await;
        }
        let Some(mut record) =
            self.store.delivery(&message.clinic_id, &message.endpoint_id, &message.delivery_id).await?
        else {
            return Ok(());
        };
        if !wants_try(&record, message.tries) {
            return Ok(());
        }
        let was = (record.state, record.tries.len());
        let endpoint = self.store.get(&message.clinic_id, &message.endpoint_id).await?.filter(|e| e.enabled);
        let Some(endpoint) = endpoint else {
            record.state = DeliveryState::Cancelled;
            record.next_at = None;
            self.store.save_delivery(&record, was).await?;
            return Ok(());
        };
        let secret = self.secret(&endpoint).await?;
        let outcome = self
            .sender
            .deliver(Delivery {
                url: &endpoint.url,
                secret: &secret,
                id: &record.delivery_id,
                timestamp: now.timestamp(),
                body: record.body.as_bytes(),
            })
            .await;
        let tried = match outcome {
            Outcome::Delivered(status) => Tried::Delivered(status),
            Outcome::Gone => Tried::Gone,
            Outcome::Failed { status, reason } => Tried::Failed { status, reason },
            Outcome::Refused(why) => Tried::Failed { status: None, reason: why.describe() },
        };
        let mut jitter = [0u8; 1];
        aws_lc_rs::rand::fill(&mut jitter).map_err(|_| "no randomness")?;
        let (record, retry, change) =
            after_try(record, endpoint.failing_since, tried, now, f64::from(jitter[0]) / 256.0);
        if !self.store.save_delivery(&record, was).await? {
            // A copy of this message was tried at the same moment and
            // recorded first: its outcome stands, and it queued any retry.
            tracing::info!("a concurrent try of this webhook delivery was recorded first");
            return Ok(());
        }
        tracing::info!(state = ?record.state, tries = record.tries.len(), "webhook delivery tried");
        vcare_runtime::metrics::count("WebhookTries", &[("result", &format!("{:?}", record.state).to_lowercase())]);
        match change {
            EndpointChange::Unchanged => {}
            EndpointChange::Healthy => self.store.set_failing(&endpoint.clinic_id, &endpoint.endpoint_id, None).await?,
            EndpointChange::FailingSince(t) => {
                self.store.set_failing(&endpoint.clinic_id, &endpoint.endpoint_id, Some(t)).await?
            }
            EndpointChange::Disable(reason) => {
                let mut data = json!({"endpointId": endpoint.endpoint_id, "reason": reason});
                if let Some(since) = endpoint.failing_since {
                    data["failingSince"] = json!(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                }
                let event =
                    DomainEvent::new(WEBHOOK_ENDPOINT_DISABLED, &endpoint.clinic_id, &endpoint.endpoint_id, now, data);
                let why = if reason == "gone" {
                    "the endpoint answered 410 Gone"
                } else {
                    "no delivery succeeded for 5 days"
                };
                if self.store.disable(&endpoint.clinic_id, &endpoint.endpoint_id, why, &event).await? {
                    tracing::warn!(reason, "a webhook endpoint was disabled");
                }
            }
        }
        if let Some(at) = retry {
            let tries = record.tries.len();
            self.enqueue(&DeliveryMessage { due: at, tries, ..message.clone() }, now).await?;
        }
        Ok(())
    }

    /// A clinic-admin's redelivery of a delivery that is over (delivered,
    /// given up, gone, cancelled): tried again now, with the same id.
    /// `None`: no such delivery; `Err(Rejected)`: still queued, or the
    /// endpoint is disabled.
    pub async fn redeliver(
        &self,
        clinic: &str,
        endpoint_id: &str,
        delivery_id: &str,
    ) -> Result<Option<DeliveryRecord>, crate::NotifyError> {
        use vcare_domain::Rejected;
        let Some(mut record) = self.store.delivery(clinic, endpoint_id, delivery_id).await? else { return Ok(None) };
        if record.state == DeliveryState::Pending {
            return Err(Rejected::Impossible("this delivery is still queued".into()).into());
        }
        if !self.store.get(clinic, endpoint_id).await?.is_some_and(|e| e.enabled) {
            return Err(Rejected::Impossible("the endpoint is disabled; make a new one".into()).into());
        }
        let now = self.clock.now();
        let was = (record.state, record.tries.len());
        let before = record.clone();
        record.state = DeliveryState::Pending;
        record.next_at = Some(now);
        if !self.store.save_delivery(&record, was).await? {
            return Err(Rejected::Impossible("this delivery is being sent again already".into()).into());
        }
        let message = DeliveryMessage {
            clinic_id: clinic.to_owned(),
            endpoint_id: endpoint_id.to_owned(),
            delivery_id: delivery_id.to_owned(),
            due: now,
            tries: was.1,
        };
        if let Err(e) = self.enqueue(&message, now).await {
            // Not queued: put it back as it was, or it would wait forever.
            tracing::error!(error = %e, "a redelivery could not be queued");
            self.store.save_delivery(&before, (DeliveryState::Pending, was.1)).await?;
            return Err(crate::NotifyError::Unavailable);
        }
        Ok(Some(record))
    }

    /// An endpoint's deliveries, newest event first, a page at a time.
    pub async fn log(
        &self,
        clinic: &str,
        endpoint_id: &str,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<DeliveryRecord>, Option<String>), crate::NotifyError> {
        Ok(self.store.deliveries(clinic, endpoint_id, cursor, limit).await?)
    }
}
