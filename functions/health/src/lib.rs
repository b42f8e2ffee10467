//! `health`: liveness (`GET /health`, no auth), readiness
//! (`GET /health/ready`: DynamoDB, SQS and KMS each answer a cheap call),
//! the notification adapters, and the video providers' status.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_care::RoomsConfig;
use vcare_care::video::{Needs, ProviderState, Providers, VideoProvider};
use vcare_comms::readiness::Readiness;
use vcare_domain::video::ProviderKind;
use vcare_http::{Authenticated, HttpFunction, Problem, Role, require_role};
use vcare_runtime::Env;

/// What the handlers share across invocations.
pub struct Health {
    readiness: Readiness,
    /// Each notification adapter and its state, from the settings.
    adapters: Vec<Value>,
    /// The deployment's video providers, probed on request.
    video: Providers,
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let readiness = Readiness::from_env(env, sdk)?;
    let config = RoomsConfig::from_env(env)?;
    let video = Providers::from_env(env, sdk, &config, Needs::default()).await?;
    let health = Health { readiness, adapters: vcare_providers::catalogue(env), video };
    let routes = Router::new()
        .route("/health", get(live))
        .route("/health/ready", get(ready))
        .route("/v1/communication/notifications/health", get(adapters))
        .route("/v1/virtual-care/providers/status", get(video_status));
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

/// `GET /v1/virtual-care/providers/status` (clinic-admin, service): each
/// video provider `up` or `down` by a probe of its own (2 s at most, all at
/// once) with its latency, or `unconfigured` (OpenVidu without
/// `OPENVIDU_URL`, Jitsi without `JITSI_HEALTH_URL`).
async fn video_status(State(health): State<Arc<Health>>, caller: Authenticated) -> Result<Json<Value>, Problem> {
    require_role(&caller, &[Role::Service, Role::ClinicAdmin])?;
    let jitsi = health.video.jitsi.health();
    let openvidu = async {
        match health.video.get(ProviderKind::Openvidu) {
            Some(p) => p.health().await,
            None => ProviderState::Unconfigured,
        }
    };
    let (jitsi, openvidu) = tokio::join!(jitsi, openvidu);
    let row = |kind: ProviderKind, state: ProviderState| match state {
        ProviderState::Up { latency_ms } => json!({"provider": kind.as_str(), "state": "up", "latencyMs": latency_ms}),
        ProviderState::Down { latency_ms } => {
            json!({"provider": kind.as_str(), "state": "down", "latencyMs": latency_ms})
        }
        ProviderState::Unconfigured => json!({"provider": kind.as_str(), "state": "unconfigured"}),
    };
    Ok(Json(json!([row(ProviderKind::Jitsi, jitsi), row(ProviderKind::Openvidu, openvidu)])))
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
