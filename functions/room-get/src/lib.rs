//! `room-get`: `GET /v1/virtual-care/rooms/{roomId}`. The room's participants
//! and its clinic's staff see it; to anyone else it does not exist (404).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use vcare_aws::SdkConfig;
use vcare_care::Rooms;
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{Authenticated, HttpFunction, Problem};
use vcare_runtime::Env;

async fn show(
    State(care): State<Arc<Rooms>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let (room, _) = care.room_for(&caller, &room_id).await?;
    Ok(Json(care.view(&room)))
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new().route("/v1/virtual-care/rooms/{room_id}", get(show));
    Ok(HttpFunction::audited(
        routes,
        Rooms::from_env(env, sdk)?,
        Audit::from_env(env, sdk)?,
        vec![Audited::new(
            Method::GET,
            "/v1/virtual-care/rooms/{room_id}",
            "room.read",
            "room",
            Subject::Path("room_id"),
        )],
    ))
}
