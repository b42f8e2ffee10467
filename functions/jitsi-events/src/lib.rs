//! `jitsi-events`: Prosody event_sync posts here (`X-Jitsi-Shared-Secret`).
//!
//! `POST /v1/virtual-care/jitsi/events/{room/created, room/destroyed,
//! occupant/joined, occupant/left}`. The first join makes the consultation
//! active with `startedAt`; the room's destruction ends it with `endedAt` and
//! `durationSeconds`. Duplicates (event_sync repeats room-destroyed) and
//! reordering change nothing: see `Room::apply_session`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use vcare_aws::SdkConfig;
use vcare_care::{Care, JitsiProblem, check_jitsi_secret, jitsi_problem, store_problem, webhook_secret};
use vcare_domain::events::{CONSULTATION_ENDED, CONSULTATION_STARTED, DomainEvent};
use vcare_domain::room::{SessionChange, SessionEvent};
use vcare_jitsi::WebhookSecret;
use vcare_runtime::{Env, Error};

pub struct Events {
    care: Care,
    secret: WebhookSecret,
}

pub fn router(events: Arc<Events>) -> Router {
    Router::new().route("/v1/virtual-care/jitsi/events/{kind}/{what}", post(receive)).with_state(events)
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<vcare_http::HttpFunction, Error> {
    let events = Events { care: Care::from_env(env, sdk)?, secret: webhook_secret(env, sdk).await? };
    Ok(vcare_http::HttpFunction::new(router(Arc::new(events))))
}

/// The event_sync fields vcare uses; others are ignored.
#[derive(Debug, Deserialize)]
struct Payload {
    room_name: String,
    #[serde(default)]
    created_at: Option<f64>,
    #[serde(default)]
    destroyed_at: Option<f64>,
    #[serde(default)]
    occupant: Option<Occupant>,
}

#[derive(Debug, Deserialize)]
struct Occupant {
    #[serde(default)]
    joined_at: Option<f64>,
}

fn at(seconds: Option<f64>, field: &str) -> Result<Option<DateTime<Utc>>, JitsiProblem> {
    match seconds {
        None => Ok(None),
        Some(s) if s.is_finite() && (0.0..1e11).contains(&s) => Ok(Utc.timestamp_opt(s as i64, 0).single()),
        Some(_) => Err(jitsi_problem(400, format!("{field}: seconds since the epoch"))),
    }
}

async fn receive(
    State(events): State<Arc<Events>>,
    Path((kind, what)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, JitsiProblem> {
    check_jitsi_secret(&events.secret, &headers)?;
    let payload: Payload = serde_json::from_slice(&body)
        .map_err(|_| jitsi_problem(400, "the body is not an event_sync payload (room_name is required)"))?;
    let now = events.care.now();
    let session_event = match (kind.as_str(), what.as_str()) {
        ("room", "created") | ("occupant", "left") => None,
        ("occupant", "joined") => {
            let joined = at(payload.occupant.as_ref().and_then(|o| o.joined_at), "occupant.joined_at")?;
            Some(SessionEvent::OccupantJoined(joined.unwrap_or(now)))
        }
        ("room", "destroyed") => {
            Some(SessionEvent::RoomDestroyed(at(payload.destroyed_at, "destroyed_at")?.unwrap_or(now)))
        }
        _ => return Err(jitsi_problem(404, "no such event")),
    };
    at(payload.created_at, "created_at")?;
    let name = payload.room_name.to_lowercase();
    let found = events.care.store.by_jitsi_room(&name).await.map_err(store_problem)?;
    let Some((room, _)) = found else {
        tracing::info!(event = %format!("{kind}/{what}"), "event_sync for a room vcare does not know");
        return Err(jitsi_problem(404, "no such room"));
    };
    if let Some(session_event) = session_event {
        events
            .care
            .store
            .update(&room.clinic_id, &room.room_id, |current| {
                let (next, change) = current.apply_session(session_event)?;
                let kind = match change {
                    SessionChange::Started => Some(CONSULTATION_STARTED),
                    SessionChange::Ended => Some(CONSULTATION_ENDED),
                    SessionChange::Corrected => None,
                };
                let events = kind.map(|k| DomainEvent::about_room(k, &next, now)).into_iter().collect();
                Some((next, events))
            })
            .await
            .map_err(store_problem)?;
    }
    Ok(Json(serde_json::json!({"status": "ok"})))
}
