//! `health`: liveness (`GET /health`, no auth) and readiness
//! (`GET /health/ready`: DynamoDB, SQS and KMS each answer a cheap call).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_http::{Caller, HttpFunction, Problem, Role, require_role};
use vcare_runtime::{ConfigError, Env};

/// Settings, read once per container.
#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub dispatch_queue_url: String,
    pub kms_key_id: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            dispatch_queue_url: env.required("DISPATCH_QUEUE_URL")?,
            kms_key_id: env.required("DATA_KEY_ID")?,
        })
    }
}

/// What the handlers share across invocations: config and SDK clients.
pub struct Health {
    config: Config,
    /// Each notification adapter and its state, from the settings.
    adapters: Vec<Value>,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    kms: aws_sdk_kms::Client,
}

impl Health {
    pub fn new(config: Config, adapters: Vec<Value>, sdk: &SdkConfig) -> Self {
        Self {
            config,
            adapters,
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
        }
    }

    /// Asks each dependency one cheap question, concurrently; returns the
    /// names of those that did not answer.
    async fn unready(&self) -> Vec<&'static str> {
        let (table, queue, key) = tokio::join!(
            self.dynamodb.describe_table().table_name(&self.config.table_name).send(),
            self.sqs
                .get_queue_attributes()
                .queue_url(&self.config.dispatch_queue_url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send(),
            self.kms.describe_key().key_id(&self.config.kms_key_id).send(),
        );
        let mut failed = Vec::new();
        if let Err(e) = table {
            tracing::warn!(dependency = "dynamodb", error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "readiness check failed");
            failed.push("dynamodb");
        }
        if let Err(e) = queue {
            tracing::warn!(dependency = "sqs", error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "readiness check failed");
            failed.push("sqs");
        }
        if let Err(e) = key {
            tracing::warn!(dependency = "kms", error = %aws_sdk_kms::error::DisplayErrorContext(&e), "readiness check failed");
            failed.push("kms");
        }
        failed
    }
}

pub fn router(state: Arc<Health>) -> Router {
    Router::new()
        .route("/health", get(live))
        .route("/health/ready", get(ready))
        .route("/v1/communication/notifications/health", get(adapters))
        .with_state(state)
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let config = Config::from_env(env)?;
    Ok(HttpFunction::new(router(Arc::new(Health::new(config, vcare_providers::catalogue(env), sdk)))))
}

/// `GET /v1/communication/notifications/health`: each provider adapter,
/// its channel, state (`active`, `configured`, `disabled`) and failover
/// position. Staff and services.
async fn adapters(State(health): State<Arc<Health>>, caller: Caller) -> Result<Json<Value>, Problem> {
    require_role(&caller, &[Role::Service, Role::ClinicAdmin, Role::Doctor, Role::Nurse])?;
    let active = health.adapters.iter().filter(|a| a["state"] == "active").count();
    Ok(Json(json!({"status": if active > 0 { "ok" } else { "degraded" }, "adapters": health.adapters})))
}

async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(health): State<Arc<Health>>) -> Result<Json<Value>, Problem> {
    let failed = health.unready().await;
    if failed.is_empty() {
        Ok(Json(json!({"status": "ok", "checks": {"dynamodb": "ok", "sqs": "ok", "kms": "ok"}})))
    } else {
        Err(Problem::service_unavailable(format!("not answering: {}", failed.join(", "))))
    }
}
