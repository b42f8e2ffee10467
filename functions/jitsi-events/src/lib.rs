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
use vcare_aws::SdkConfig;
use vcare_care::{RoomError, Rooms, check_jitsi_secret, webhook_secret};
use vcare_domain::jitsi::event_sync;
use vcare_http::{HttpFunction, JitsiProblem, jitsi_problem, jitsi_shared_secret};
use vcare_jitsi::WebhookSecret;
use vcare_runtime::{Env, Error};

pub struct Events {
    care: Rooms,
    secret: WebhookSecret,
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, Error> {
    let events = Events { care: Rooms::from_env(env, sdk)?, secret: webhook_secret(env, sdk).await? };
    let routes = Router::new().route("/v1/virtual-care/jitsi/events/{kind}/{what}", post(receive));
    Ok(HttpFunction::serving(routes, events))
}

async fn receive(
    State(events): State<Arc<Events>>,
    Path((kind, what)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, JitsiProblem> {
    check_jitsi_secret(&events.secret, jitsi_shared_secret(&headers))?;
    let now = events.care.now();
    let sync = event_sync(&kind, &what, &body, now).map_err(|r| jitsi_problem(r.status, r.detail))?;
    let found = events.care.store.by_jitsi_room(&sync.room_name).await.map_err(RoomError::from)?;
    let Some((room, _)) = found else {
        tracing::info!(event = %format!("{kind}/{what}"), "event_sync for a room vcare does not know");
        return Err(jitsi_problem(404, "no such room"));
    };
    if let Some(session_event) = sync.session {
        events.care.apply_session(&room, session_event).await?;
    }
    Ok(Json(serde_json::json!({"status": "ok"})))
}
