//! `health`: liveness (`GET /health`, no auth) and readiness
//! (`GET /health/ready`: DynamoDB, SQS and KMS each answer a cheap call).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_comms::readiness::Readiness;
use vcare_http::{Authenticated, HttpFunction, Problem, Role, require_role};
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

/// What the handlers share across invocations.
pub struct Health {
    readiness: Readiness,
    /// Each notification adapter and its state, from the settings.
    adapters: Vec<Value>,
}

impl Health {
    pub fn new(config: Config, adapters: Vec<Value>, sdk: &SdkConfig) -> Self {
        let readiness = Readiness::new(sdk, config.table_name, config.dispatch_queue_url, config.kms_key_id);
        Self { readiness, adapters }
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
async fn adapters(State(health): State<Arc<Health>>, caller: Authenticated) -> Result<Json<Value>, Problem> {
    require_role(&caller, &[Role::Service, Role::ClinicAdmin, Role::Doctor, Role::Nurse])?;
    let active = health.adapters.iter().filter(|a| a["state"] == "active").count();
    Ok(Json(json!({"status": if active > 0 { "ok" } else { "degraded" }, "adapters": health.adapters})))
}

async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(health): State<Arc<Health>>) -> Result<Json<Value>, Problem> {
    let failed = health.readiness.unready().await;
    if failed.is_empty() {
        Ok(Json(json!({"status": "ok", "checks": {"dynamodb": "ok", "sqs": "ok", "kms": "ok"}})))
    } else {
        Err(Problem::service_unavailable(format!("not answering: {}", failed.join(", "))))
    }
}
