//! `dial-in`: what jitsi-meet (`dialInConfCodeUrl`, `dialInNumbersUrl`)
//! and Jigasi call, in Jitsi's own formats, without credentials (the
//! meeting page calls them from the browser):
//! - `GET /v1/virtual-care/jitsi/conference-mapper?conference=<room>@conference.<domain>`
//!   → `{"message", "id": <PIN>, "conference"}`, and `?id=<PIN>` → the
//!   same: only inside the room's join window (404 otherwise), a PIN of
//!   other than 10 digits 400, and 429 for the rest of a minute in which
//!   too many of the same source's PIN lookups found nothing (a source is
//!   the caller's address, or Jigasi by `X-Jitsi-Shared-Secret`);
//! - `GET /v1/virtual-care/jitsi/phone-numbers?conference=...` →
//!   `{"message", "numbers": {"AF": ["+93…"]}, "numbersEnabled"}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use vcare_aws::SdkConfig;
use vcare_care::dial_in::{DialIn, PinAnswer};
use vcare_http::audit::origin;

use vcare_http::{HttpFunction, Problem, jitsi_shared_secret};
use vcare_runtime::Env;

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new()
        .route("/v1/virtual-care/jitsi/conference-mapper", get(mapper))
        .route("/v1/virtual-care/jitsi/phone-numbers", get(numbers));
    Ok(HttpFunction::serving(routes, DialIn::from_env(env, sdk).await?))
}

fn no_mapping() -> Problem {
    Problem::not_found("no conference mapping")
}

async fn mapper(
    State(d): State<Arc<DialIn>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Json<Value>, Problem> {
    match (query.get("conference"), query.get("id")) {
        (Some(jid), None) => d.by_conference(jid).await?.map(Json).ok_or_else(no_mapping),
        (None, Some(pin)) => {
            match d.by_pin(pin, &d.source(jitsi_shared_secret(&headers), &origin(&extensions).1)).await? {
                PinAnswer::Found(v) => Ok(Json(v)),
                PinAnswer::NotFound => Err(no_mapping()),
                PinAnswer::TooMany => Err(Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many PIN lookups found nothing; try again in a minute",
                )),
            }
        }
        _ => Err(Problem::bad_request("one of conference or id")),
    }
}

async fn numbers(
    State(d): State<Arc<DialIn>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Problem> {
    let jid = query.get("conference").ok_or_else(|| Problem::bad_request("conference is required"))?;
    Ok(Json(d.numbers(jid).await?))
}
