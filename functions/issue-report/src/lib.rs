//! `issue-report`: `POST /v1/virtual-care/rooms/{roomId}/issues` — a
//! participant reports a technical issue: 202 `{"issueId"}`. The description
//! is stored but never logged nor put in the event (it is free text).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use vcare_aws::SdkConfig;
use vcare_care::{RoomError, Rooms, participant_only};
use vcare_domain::events::{DomainEvent, ISSUE_REPORTED};
use vcare_domain::ids;
use vcare_domain::requests::IssueReport;
use vcare_domain::room_records::IssueRecord;
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem};
use vcare_runtime::Env;

async fn report(
    State(care): State<Arc<Rooms>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<IssueReport>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    let (issue_type, description) = body.validate()?;
    let (room, standing) = care.room_for(&caller, &room_id).await?;
    participant_only(standing)?;
    let issue_id = ids::prefixed("iss");
    let issue_type = issue_type.as_str().to_owned();
    let now = care.now();
    let event = DomainEvent::new(
        ISSUE_REPORTED,
        &room.clinic_id,
        &room.room_id,
        now,
        json!({"issueId": issue_id, "roomId": room.room_id, "issueType": issue_type, "reportedBy": caller.user_id}),
    );
    let issue = IssueRecord { issue_id, issue_type, description, reported_by: caller.user_id.clone(), created_at: now };
    care.store.add_issue(&room, &issue, &event).await.map_err(RoomError::from)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"issueId": issue.issue_id}))))
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new().route("/v1/virtual-care/rooms/{room_id}/issues", post(report));
    Ok(HttpFunction::audited(
        routes,
        Rooms::from_env(env, sdk)?,
        Audit::from_env(env, sdk)?,
        vec![Audited::new(
            Method::POST,
            "/v1/virtual-care/rooms/{room_id}/issues",
            "issue.report",
            "room",
            Subject::Path("room_id"),
        )],
    ))
}
