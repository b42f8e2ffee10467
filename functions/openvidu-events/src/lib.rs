//! `openvidu-events`: `POST /v1/virtual-care/openvidu/webhook`, LiveKit's
//! webhooks (OpenVidu's `webhook.urls`, signed with the API key vcare
//! has). `Authorization` must verify over the bytes received (else 401,
//! nothing changed); `participant_joined` and `room_finished` then drive
//! the same session rules as Jitsi's event_sync, so LiveKit's repeats (up
//! to 5 attempts) and its disorder across resources change nothing. A
//! webhook for a room vcare does not know is 200, ignored and counted
//! (`OpenViduWebhooksIgnored`): LiveKit would only retry it. Without
//! `OPENVIDU_URL` the route answers 404.
//!
//! `egress_started`/`egress_updated`/`egress_ended` advance or settle the
//! room's recording (`RECORDING_BUCKET` set): `EGRESS_COMPLETE` is `ready`
//! once S3 has the file as LiveKit reported it, encrypted with the
//! recordings key; `FAILED`/`ABORTED`/`LIMIT_REACHED` are `failed` with
//! LiveKit's error. S3 unavailable: 503, and LiveKit tries again.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use vcare_aws::SdkConfig;
use vcare_care::recordings::{RecordingStorage, Recordings};
use vcare_care::{RoomError, Rooms};
use vcare_domain::jitsi::Refused;
use vcare_domain::video::livekit::{webhook, within_size};
use vcare_http::{HttpFunction, Problem};
use vcare_livekit::Credentials;
use vcare_runtime::{Env, Error, metrics};

pub struct Webhooks {
    care: Rooms,
    credentials: Option<Credentials>,
    recordings: Option<(Recordings, RecordingStorage)>,
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, Error> {
    let care = Rooms::from_env(env, sdk)?;
    let credentials = vcare_care::video::webhook_credentials(env, sdk, &care.config).await?;
    let recordings = env.get("RECORDING_BUCKET").is_some().then(|| Recordings::with_storage(env, sdk)).transpose()?;
    let routes = Router::new().route("/v1/virtual-care/openvidu/webhook", post(receive));
    Ok(HttpFunction::serving(routes, Webhooks { care, credentials, recordings }))
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
    if hook.session.is_none() && hook.egress.is_none() {
        return Ok(Json(serde_json::json!({"status": "ok"})));
    }
    let room = match &hook.room_name {
        Some(name) => hooks.care.store.by_jitsi_room(name).await.map_err(RoomError::from)?,
        None => None,
    };
    let known = match room {
        Some((room, _)) if room.provider == vcare_domain::video::ProviderKind::Openvidu => {
            match (&hook.session, &hook.egress, &hooks.recordings) {
                (Some(session), _, _) => hooks.care.apply_session(&room, *session).await.map(|_| true)?,
                (None, Some(info), Some((recordings, storage))) => {
                    recordings.egress_changed(storage, &room, info).await?.is_some()
                }
                _ => false,
            }
        }
        _ => false,
    };
    if !known {
        tracing::info!(event = %hook.event, "a LiveKit webhook for a room or egress vcare does not know; ignored");
        metrics::count("OpenViduWebhooksIgnored", &[("event", hook.event.as_str())]);
    }
    Ok(Json(serde_json::json!({"status": "ok"})))
}

/// A body the domain refused, with the status it gave (413 for too
/// large, 400 otherwise).
fn refusal(r: Refused) -> Problem {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    Problem::new(status, r.detail)
}
