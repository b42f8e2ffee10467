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
use vcare_runtime::Env;

/// What the handlers share across invocations.
pub struct Health {
    readiness: Readiness,
    /// Each notification adapter and its state, from the settings.
    adapters: Vec<Value>,
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let health = Health { readiness: Readiness::from_env(env, sdk)?, adapters: vcare_providers::catalogue(env) };
    let routes = Router::new()
        .route("/health", get(live))
        .route("/health/ready", get(ready))
        .route("/v1/communication/notifications/health", get(adapters));
    Ok(HttpFunction::serving(routes, health))
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
