//! `issue-report`: `POST /v1/virtual-care/rooms/{roomId}/issues` — a
//! participant reports a technical issue: 202 `{"issueId"}`. The description
//! is stored but never logged nor put in the event (it is free text).

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use vcare_aws::SdkConfig;
use vcare_care::{Care, participant_only, rejected, store_problem};
use vcare_domain::events::{DomainEvent, ISSUE_REPORTED};
use vcare_domain::ids;
use vcare_domain::requests::IssueReport;
use vcare_http::{ApiJson, Caller, HttpFunction, Problem};
use vcare_runtime::Env;

pub fn router(care: Arc<Care>) -> Router {
    Router::new().route("/v1/virtual-care/rooms/{room_id}/issues", post(report)).with_state(care)
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    Ok(vcare_care::http_function(env, sdk, router)?)
}

async fn report(
    State(care): State<Arc<Care>>,
    caller: Caller,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<IssueReport>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    let (issue_type, description) = body.validate().map_err(rejected)?;
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
    let record = HashMap::from([
        ("issueId".to_owned(), AttributeValue::S(issue_id.clone())),
        ("issueType".to_owned(), AttributeValue::S(issue_type)),
        ("description".to_owned(), AttributeValue::S(description)),
        ("reportedBy".to_owned(), AttributeValue::S(caller.user_id.clone())),
        ("createdAt".to_owned(), AttributeValue::S(now.to_rfc3339())),
    ]);
    care.store.put_child(&room, &format!("ISSUE#{issue_id}"), record, &event).await.map_err(store_problem)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"issueId": issue_id}))))
}
