//! `waiting-room`, for rooms with `"lobby": true` (API.md "waiting room"):
//! - `POST .../rooms/{roomId}/check-in`: a listed participant, for
//!   themself → `{"status", "since"?, "clinicianNotified"}` (clinicians,
//!   and everyone in a room without a lobby, are `admitted` at once);
//! - `GET .../rooms/{roomId}/waiting`: the room's doctors and nurses, or a
//!   service → `[{"userId", "displayName", "since"}]`;
//! - `POST .../rooms/{roomId}/admit` `{"userId"}`: the same callers → 200.
//!
//! Anyone not listed is 404 to a check-in (the room is not theirs to wait
//! in); admitting someone not listed is 404, someone not waiting 409.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_care::RoomError;
use vcare_domain::room::{Room, Standing};
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem, Role};
use vcare_runtime::Env;
use vcare_waiting_room::WaitingRoom;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Admit {
    user_id: String,
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new()
        .route("/v1/virtual-care/rooms/{room_id}/check-in", post(check_in))
        .route("/v1/virtual-care/rooms/{room_id}/waiting", get(waiting))
        .route("/v1/virtual-care/rooms/{room_id}/admit", post(admit));
    Ok(HttpFunction::audited(
        routes,
        WaitingRoom::from_env(env, sdk)?,
        Audit::from_env(env, sdk)?,
        vec![
            Audited::new(
                Method::POST,
                "/v1/virtual-care/rooms/{room_id}/check-in",
                "waiting.check-in",
                "room",
                Subject::Path("room_id"),
            ),
            Audited::new(
                Method::GET,
                "/v1/virtual-care/rooms/{room_id}/waiting",
                "waiting.read",
                "room",
                Subject::Path("room_id"),
            ),
            Audited::new(
                Method::POST,
                "/v1/virtual-care/rooms/{room_id}/admit",
                "waiting.admit",
                "room",
                Subject::Path("room_id"),
            ),
        ],
    ))
}

async fn check_in(
    State(w): State<Arc<WaitingRoom>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let (room, standing) = w.care.room_for(&caller, &room_id).await?;
    if !matches!(standing, Standing::Participant(_)) {
        return Err(RoomError::NoSuchRoom.into());
    }
    let done = w.check_in(&room, &caller.user_id).await?;
    Ok(Json(done.view()))
}

/// The room, if the caller is one of its doctors or nurses, or a service.
async fn as_clinician(w: &WaitingRoom, caller: &Authenticated, room_id: &str) -> Result<Room, Problem> {
    let (room, standing) = w.care.room_for(caller, room_id).await?;
    let clinician = matches!(standing, Standing::Participant(r) if r.is_clinician());
    if !clinician && !caller.has_role(Role::Service) {
        return Err(Problem::forbidden("only the room's doctors and nurses, or a service, see and admit who waits"));
    }
    Ok(room)
}

async fn waiting(
    State(w): State<Arc<WaitingRoom>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let room = as_clinician(&w, &caller, &room_id).await?;
    Ok(Json(Value::Array(room.waiting_list())))
}

async fn admit(
    State(w): State<Arc<WaitingRoom>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<Admit>,
) -> Result<Json<Value>, Problem> {
    let room = as_clinician(&w, &caller, &room_id).await?;
    let admission = w.admit(&room, &body.user_id, &caller.user_id).await?;
    Ok(Json(json!({"userId": admission.user_id, "status": "admitted", "admittedAt": admission.at})))
}
