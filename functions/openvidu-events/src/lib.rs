//! `openvidu-events`: `POST /v1/virtual-care/openvidu/webhook`, LiveKit's
//! webhooks (OpenVidu's `webhook.urls`, signed with the API key vcare
//! has). `Authorization` must verify over the bytes received (else 401,
//! nothing changed); `participant_joined` and `room_finished` then drive
//! the same session rules as Jitsi's event_sync, so LiveKit's repeats (up
//! to 5 attempts) and its disorder across resources change nothing. A
//! webhook for a room vcare does not know is 200, ignored and counted
//! (`OpenViduWebhooksIgnored`): LiveKit would only retry it. Without
//! `OPENVIDU_URL` the route answers 404.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use vcare_aws::SdkConfig;
use vcare_care::{RoomError, Rooms};
use vcare_domain::jitsi::Refused;
use vcare_domain::video::livekit::{webhook, within_size};
use vcare_http::{HttpFunction, Problem};
use vcare_livekit::Credentials;
use vcare_runtime::{Env, Error, metrics};

pub struct Webhooks {
    care: Rooms,
    credentials: Option<Credentials>,
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, Error> {
    let care = Rooms::from_env(env, sdk)?;
    let credentials = vcare_care::video::webhook_credentials(env, sdk, &care.config).await?;
    let routes = Router::new().route("/v1/virtual-care/openvidu/webhook", post(receive));
    Ok(HttpFunction::serving(routes, Webhooks { care, credentials }))
}

async fn receive(
    State(hooks): State<Arc<Webhooks>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, Problem> {
    let Some(credentials) = &hooks.credentials else {
        return Err(Problem::not_found("OpenVidu is not configured here"));
    };
    within_size(&body).map_err(refusal)?;
    if let Err(why) = credentials.verify_webhook(headers.get(AUTHORIZATION).map(|v| v.as_bytes()), &body) {
        tracing::warn!(reason = %why, "a LiveKit webhook was refused");
        metrics::count("OpenViduWebhooksRefused", &[]);
        return Err(Problem::unauthorized("the webhook's Authorization does not verify"));
    }
    let hook = webhook(&body, hooks.care.now()).map_err(refusal)?;
    let Some(session) = hook.session else {
        return Ok(Json(serde_json::json!({"status": "ok"})));
    };
    let room = match &hook.room_name {
        Some(name) => hooks.care.store.by_jitsi_room(name).await.map_err(RoomError::from)?,
        None => None,
    };
    match room {
        Some((room, _)) if room.provider == vcare_domain::video::ProviderKind::Openvidu => {
            hooks.care.apply_session(&room, session).await?;
        }
        _ => {
            tracing::info!(event = %hook.event, "a LiveKit webhook for a room vcare does not know; ignored");
            metrics::count("OpenViduWebhooksIgnored", &[("event", hook.event.as_str())]);
        }
    }
    Ok(Json(serde_json::json!({"status": "ok"})))
}

/// A body the domain refused, with the status it gave (413 for too
/// large, 400 otherwise).
fn refusal(r: Refused) -> Problem {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    Problem::new(status, r.detail)
}
