//! `room-create`: `POST /v1/virtual-care/rooms` (doctor, nurse, clinic-admin,
//! service). One room per appointment and clinic: a replay of the same body
//! answers 200 with the room as it is; another body for the appointment 409.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use vcare_aws::SdkConfig;
use vcare_care::{Rooms, STAFF};
use vcare_domain::events::{DomainEvent, ROOM_CREATED};
use vcare_domain::ids;
use vcare_domain::room::CreateRoom;
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem, require_role};
use vcare_runtime::Env;
use vcare_store::Created;

async fn create(
    State(care): State<Arc<Rooms>>,
    caller: Authenticated,
    ApiJson(body): ApiJson<CreateRoom>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    require_role(&caller, STAFF)?;
    let requested = body.provider;
    let request = body.validate()?;
    let provider = care.provider_for(&caller.clinic_id, requested)?;
    let fingerprint = request.fingerprint_with(requested);
    let now = care.now();
    let room = request.into_room(&caller.clinic_id, ids::room_id(), ids::jitsi_room(), provider, now);
    let event = DomainEvent::about_room(ROOM_CREATED, &room, now);
    match care.create(&room, &fingerprint, &event).await? {
        Created::New(room) => Ok((StatusCode::CREATED, Json(care.view(&room)))),
        Created::Existing { room, same_request: true } => Ok((StatusCode::OK, Json(care.view(&room)))),
        Created::Existing { same_request: false, .. } => {
            Err(Problem::conflict("this appointment already has a room, created with other details"))
        }
    }
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new().route("/v1/virtual-care/rooms", post(create));
    Ok(HttpFunction::audited(
        routes,
        Rooms::from_env(env, sdk)?,
        Audit::from_env(env, sdk)?,
        vec![Audited::new(Method::POST, "/v1/virtual-care/rooms", "room.create", "room", Subject::Created("roomId"))],
    ))
}
