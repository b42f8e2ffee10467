//! `notification-create`: `POST /v1/communication/notifications` (service,
//! doctor, nurse, clinic-admin), `Idempotency-Key` required.
//!
//! Like AWS Lambda Powertools' idempotency: the key (hashed) is remembered
//! with a hash of the request and an expiry; the same key and body answer the
//! first response and nothing is sent twice; another body is 409; a
//! duplicate racing the first is 409. The notification, its idempotency
//! record and its `accepted` event are one transaction. Personal data and the
//! rendered text are sealed before they are stored; templates are rendered
//! here, so a missing variable is a 422 now rather than a failed send later.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use vcare_aws::SdkConfig;
use vcare_comms::{Notifications, Submitted};
use vcare_domain::notification::{NotificationRequest, Status};
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem, Role, idempotency_key, require_role};
use vcare_runtime::Env;

pub const SENDERS: &[Role] = &[Role::Service, Role::Doctor, Role::Nurse, Role::ClinicAdmin];

async fn accept(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NotificationRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    require_role(&caller, SENDERS)?;
    let key = idempotency_key(&headers)?;
    let submitted = comms.submit(&caller.clinic_id, &key, body, comms.clock.now()).await?;
    let id = match submitted {
        Submitted::Accepted(id) => id,
        Submitted::Conflict => return Err(Problem::conflict("this Idempotency-Key was used with another request")),
        Submitted::InProgress => {
            return Err(Problem::conflict("a request with this Idempotency-Key is in progress"));
        }
    };
    // The first response, whatever has happened since (GET tells the rest).
    Ok((StatusCode::ACCEPTED, Json(json!({"notificationId": id, "status": Status::Queued}))))
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new().route("/v1/communication/notifications", post(accept));
    Ok(HttpFunction::audited(
        routes,
        Notifications::from_env(env, sdk)?,
        Audit::from_env(env, sdk)?,
        vec![Audited::new(
            Method::POST,
            "/v1/communication/notifications",
            "notification.create",
            "notification",
            Subject::Created("notificationId"),
        )],
    ))
}
