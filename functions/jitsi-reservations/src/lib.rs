//! `jitsi-reservations`: the reservation API Prosody's `mod_reservations`
//! calls before it lets Jicofo create a conference (`X-Jitsi-Shared-Secret`).
//!
//! - `POST .../conference` (form: `name`, `start_time`, `mail_owner`): 200
//!   `{id, name, mail_owner, start_time, duration}` when `name` is a vcare
//!   room that is scheduled or active and inside its join window; `duration`
//!   runs to `scheduledEnd + grace`, after which Prosody destroys the room.
//!   Otherwise 403 with `message`. A reservation still held for the room
//!   (Prosody did not DELETE it) is 409 `{conflict_id}`, which the module
//!   follows with a GET.
//! - `GET .../conference/{id}`, `DELETE .../conference/{id}`.
//!
//! The reservation id is the Jitsi room name (the module takes any string).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::json;
use vcare_aws::SdkConfig;
use vcare_care::{RoomError, Rooms, check_jitsi_secret, webhook_secret};
use vcare_domain::jitsi::{Reservation, reservation};
use vcare_domain::room::{NotJoinable, Room};
use vcare_domain::room_records::ReservationRecord;
use vcare_http::{HttpFunction, JitsiProblem, jitsi_problem, jitsi_shared_secret};
use vcare_jitsi::WebhookSecret;
use vcare_runtime::{Env, Error};

pub struct Reservations {
    care: Rooms,
    secret: WebhookSecret,
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, Error> {
    let r = Reservations { care: Rooms::from_env(env, sdk)?, secret: webhook_secret(env, sdk).await? };
    let routes = Router::new()
        .route("/v1/virtual-care/jitsi/reservations/conference", post(create))
        .route("/v1/virtual-care/jitsi/reservations/conference/{id}", get(show).delete(remove));
    Ok(HttpFunction::serving(routes, r))
}

/// The date format mod_reservations sends and parses (Java's
/// `yyyy-MM-dd'T'HH:mm:ss.SSSX`).
fn java_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn conference(room: &Room, care: &Rooms, start: DateTime<Utc>, mail_owner: &str) -> Json<serde_json::Value> {
    let duration = (care.config.join.closes(room) - start).num_seconds().max(0);
    Json(json!({
        "id": room.jitsi_room, "name": room.jitsi_room, "mail_owner": mail_owner,
        "start_time": java_date(start), "duration": duration,
    }))
}

/// The room behind a conference name (names vcare makes are alphanumeric;
/// anything else is no room of ours).
async fn lookup(care: &Rooms, name: &str) -> Result<Option<Room>, JitsiProblem> {
    if name.is_empty() || name.len() > 128 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    let found = care.store.by_jitsi_room(&name.to_lowercase()).await.map_err(RoomError::from)?;
    Ok(found.map(|(room, _)| room))
}

/// The room behind a conference name, if a conference may run in it now.
async fn reservable(care: &Rooms, name: &str) -> Result<Room, JitsiProblem> {
    let room =
        lookup(care, name).await?.ok_or_else(|| jitsi_problem(403, "no consultation is scheduled in this room"))?;
    match room.joinable(&care.config.join, care.now()) {
        Ok(()) => Ok(room),
        Err(NotJoinable::Closed(status)) => {
            Err(jitsi_problem(403, format!("this consultation is {}", status.as_str())))
        }
        Err(NotJoinable::TooEarly { opens }) => {
            Err(jitsi_problem(403, format!("this consultation opens at {}", opens.to_rfc3339())))
        }
        Err(NotJoinable::TooLate) => Err(jitsi_problem(403, "this consultation's time is over")),
    }
}

async fn create(State(r): State<Arc<Reservations>>, headers: HeaderMap, body: Bytes) -> Result<Response, JitsiProblem> {
    check_jitsi_secret(&r.secret, jitsi_shared_secret(&headers))?;
    let Reservation { name, start, mail_owner } =
        reservation(&body, r.care.now()).map_err(|r| jitsi_problem(r.status, r.detail))?;
    let room = reservable(&r.care, &name).await?;
    let record = ReservationRecord { start_time: java_date(start), mail_owner: mail_owner.clone() };
    if r.care.store.reserve(&room, &record).await.map_err(RoomError::from)? {
        Ok(conference(&room, &r.care, start, &mail_owner).into_response())
    } else {
        Ok((StatusCode::CONFLICT, Json(json!({"conflict_id": room.jitsi_room}))).into_response())
    }
}

async fn show(
    State(r): State<Arc<Reservations>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, JitsiProblem> {
    check_jitsi_secret(&r.secret, jitsi_shared_secret(&headers))?;
    let room = reservable(&r.care, &id).await?;
    let kept = r
        .care
        .store
        .reservation(&room)
        .await
        .map_err(RoomError::from)?
        .ok_or_else(|| jitsi_problem(404, "no such reservation"))?;
    let start =
        DateTime::parse_from_rfc3339(&kept.start_time).map(|t| t.with_timezone(&Utc)).unwrap_or_else(|_| r.care.now());
    Ok(conference(&room, &r.care, start, &kept.mail_owner))
}

async fn remove(
    State(r): State<Arc<Reservations>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, JitsiProblem> {
    check_jitsi_secret(&r.secret, jitsi_shared_secret(&headers))?;
    let room = lookup(&r.care, &id).await?.ok_or_else(|| jitsi_problem(404, "no such reservation"))?;
    r.care.store.release_reservation(&room).await.map_err(RoomError::from)?;
    Ok(Json(json!({})))
}
