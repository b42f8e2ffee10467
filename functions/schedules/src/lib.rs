//! `schedules`: a template sent to one recipient on an RRULE in their
//! time zone (service, clinic-admin, doctor, nurse).
//!
//! - `POST /v1/communication/schedules` (`Idempotency-Key`): checked as a
//!   notification would be at every firing, then kept with its first
//!   occurrence in the due index; 201 with the next 5 occurrences.
//! - `GET .../{id}` (the next 10, `firedCount`, `lastFiredAt`),
//!   `GET ...?userId=`, `PATCH {"status": "paused" | "active"}`, `DELETE`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_comms::{Notifications, ScheduleCreate};
use vcare_domain::ids::is_valid_external_id;
use vcare_domain::schedule::{ScheduleRequest, ScheduleStatus};
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem, Role, idempotency_key, require_role};
use vcare_runtime::Env;

const SCHEDULES: &str = "/v1/communication/schedules";
const CALLERS: &[Role] = &[Role::Service, Role::ClinicAdmin, Role::Doctor, Role::Nurse];

fn id_ok(id: &str) -> Result<(), Problem> {
    if is_valid_external_id(id) { Ok(()) } else { Err(Problem::not_found("no such schedule")) }
}

async fn create(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ScheduleRequest>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    require_role(&caller, CALLERS)?;
    let key = idempotency_key(&headers)?;
    match comms.create_schedule(&caller.clinic_id, &key, body, comms.clock.now()).await? {
        ScheduleCreate::Created(s) => Ok((StatusCode::CREATED, Json(comms.created_view(&s)))),
        ScheduleCreate::Conflict => Err(Problem::conflict("this Idempotency-Key was used with another request")),
        ScheduleCreate::InProgress => Err(Problem::conflict("a request with this Idempotency-Key is in progress")),
    }
}

async fn list(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Problem> {
    require_role(&caller, CALLERS)?;
    if let Some(unknown) = query.keys().find(|k| k.as_str() != "userId") {
        return Err(Problem::bad_request(format!("unknown query parameter {unknown}")));
    }
    let user = query.get("userId").ok_or_else(|| Problem::bad_request("userId is required"))?;
    if !is_valid_external_id(user) {
        return Err(Problem::bad_request("userId: 1 to 128 of A-Z a-z 0-9 . _ : @ -"));
    }
    Ok(Json(json!({"items": comms.schedules_of(&caller.clinic_id, user).await?})))
}

async fn show(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    require_role(&caller, CALLERS)?;
    id_ok(&id)?;
    comms.schedule(&caller.clinic_id, &id).await?.map(Json).ok_or_else(|| Problem::not_found("no such schedule"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    status: String,
}

async fn change(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Change>,
) -> Result<Json<Value>, Problem> {
    require_role(&caller, CALLERS)?;
    id_ok(&id)?;
    let status = match body.status.as_str() {
        "paused" => ScheduleStatus::Paused,
        "active" => ScheduleStatus::Active,
        _ => return Err(Problem::bad_request("status: paused or active")),
    };
    let now = comms.clock.now();
    comms
        .set_schedule_status(&caller.clinic_id, &id, status, now)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found("no such schedule"))
}

async fn delete(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    require_role(&caller, CALLERS)?;
    id_ok(&id)?;
    if comms.delete_schedule(&caller.clinic_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("no such schedule"))
    }
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new()
        .route(SCHEDULES, get(list).post(create))
        .route(&format!("{SCHEDULES}/{{id}}"), get(show).patch(change).delete(delete));
    Ok(HttpFunction::audited(
        routes,
        Notifications::from_env(env, sdk)?,
        Audit::from_env(env, sdk)?,
        vec![
            Audited::new(Method::GET, SCHEDULES, "schedule.list", "user", Subject::Query("userId")),
            Audited::new(Method::POST, SCHEDULES, "schedule.create", "schedule", Subject::Created("scheduleId")),
            Audited::new(Method::GET, format!("{SCHEDULES}/{{id}}"), "schedule.read", "schedule", Subject::Path("id")),
            Audited::new(
                Method::PATCH,
                format!("{SCHEDULES}/{{id}}"),
                "schedule.change",
                "schedule",
                Subject::Path("id"),
            ),
            Audited::new(
                Method::DELETE,
                format!("{SCHEDULES}/{{id}}"),
                "schedule.delete",
                "schedule",
                Subject::Path("id"),
            ),
        ],
    ))
}
