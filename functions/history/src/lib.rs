//! `history`: `GET /v1/virtual-care/history?limit=20&cursor=...` — the
//! caller's rooms, newest `scheduledStart` first, from the membership index.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use vcare_aws::SdkConfig;
use vcare_care::{RoomError, Rooms};
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{Authenticated, HttpFunction, Problem};
use vcare_runtime::Env;

pub const MAX_LIMIT: i32 = 100;

async fn history(
    State(care): State<Arc<Rooms>>,
    caller: Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, Problem> {
    if let Some(unknown) = query.keys().find(|k| !matches!(k.as_str(), "limit" | "cursor")) {
        return Err(Problem::bad_request(format!("unknown query parameter {unknown}")));
    }
    let limit = match query.get("limit") {
        None => 20,
        Some(raw) => match raw.parse::<i32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(Problem::bad_request(format!("limit: a whole number from 1 to {MAX_LIMIT}"))),
        },
    };
    let cursor = query.get("cursor").map(String::as_str).filter(|c| !c.is_empty());
    if cursor.is_some_and(|c| c.len() > 2048) {
        return Err(Problem::bad_request("cursor: not a cursor this endpoint gave you"));
    }
    let page = care.store.history(&caller.clinic_id, &caller.user_id, limit, cursor).await.map_err(RoomError::from)?;
    let items: Vec<_> = page.rooms.iter().map(|r| care.view(r)).collect();
    let mut body = json!({"items": items});
    if let Some(next) = page.next_cursor {
        body["nextCursor"] = json!(next);
    }
    Ok(Json(body))
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new().route("/v1/virtual-care/history", get(history));
    Ok(HttpFunction::audited(
        routes,
        Rooms::from_env(env, sdk)?,
        Audit::from_env(env, sdk)?,
        vec![Audited::new(Method::GET, "/v1/virtual-care/history", "history.read", "user", Subject::Caller)],
    ))
}
