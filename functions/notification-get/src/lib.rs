//! `notification-get`: `GET /v1/communication/notifications/{id}` — status,
//! channel, provider and every attempt, the recipient masked. Staff and
//! services of the notification's clinic; anyone else: 404.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use vcare_aws::SdkConfig;
use vcare_comms::{Notifications, NotifyError};
use vcare_domain::ids::is_valid_external_id;
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{Authenticated, HttpFunction, Problem, Role};
use vcare_runtime::Env;

async fn show(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let not_found = || Problem::not_found("no such notification");
    if !caller.has_any_role(&[Role::Service, Role::Doctor, Role::Nurse, Role::ClinicAdmin])
        || !is_valid_external_id(&id)
    {
        return Err(not_found());
    }
    let (n, _) = comms.store.get(&caller.clinic_id, &id).await.map_err(NotifyError::from)?.ok_or_else(not_found)?;
    Ok(Json(n.view()))
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new().route("/v1/communication/notifications/{id}", get(show));
    Ok(HttpFunction::audited(
        routes,
        Notifications::from_env(env, sdk)?,
        Audit::from_env(env, sdk)?,
        vec![Audited::new(
            Method::GET,
            "/v1/communication/notifications/{id}",
            "notification.read",
            "notification",
            Subject::Path("id"),
        )],
    ))
}
