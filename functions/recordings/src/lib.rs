//! `recordings` (API.md "Recordings and dial-in"):
//! - `POST .../rooms/{roomId}/consent` `{"recording": bool}`: a listed
//!   participant, for themself → 200 `{"roomId", "userId", "recording",
//!   "at", "recordingAllowed"}`. The room may be recorded only while every
//!   listed patient's answer is yes; until then a doctor's Jitsi token has
//!   `features.recording` `"false"`. Anyone not listed is 404, an ended or
//!   cancelled room 409.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use vcare_aws::SdkConfig;
use vcare_care::recordings::Recordings;
use vcare_domain::recording::ConsentRequest;
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem};
use vcare_runtime::Env;

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new().route("/v1/virtual-care/rooms/{room_id}/consent", post(consent));
    Ok(HttpFunction::serving(routes, Recordings::from_env(env, sdk)?))
}

async fn consent(
    State(r): State<Arc<Recordings>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<ConsentRequest>,
) -> Result<Json<Value>, Problem> {
    Ok(Json(r.consent(&caller, &room_id, body.recording).await?.view()))
}
