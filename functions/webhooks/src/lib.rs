//! `webhooks`: a clinic's webhook endpoints, for its clinic-admins (others
//! 403; another clinic's endpoint is not there, 404).
//!
//! - `POST /v1/webhooks/endpoints` `{"url", "eventTypes"}` → 201 with the
//!   endpoint and its `secret` (`whsec_…`), shown this once. A URL that is
//!   not https, resolves to no public address (private, loopback,
//!   link-local, metadata…) or not at all, unknown event types: 400; the
//!   clinic's limit reached: 422. Nothing is kept then.
//! - `GET /v1/webhooks/endpoints`, `GET` and `DELETE .../{endpointId}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_comms::webhooks::WebhookEndpoints;
use vcare_domain::webhooks::endpoint::EndpointRequest;
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem, Role, require_role};
use vcare_runtime::{Clock, Env, Error};

const ENDPOINTS: &str = "/v1/webhooks/endpoints";

struct Webhooks {
    endpoints: WebhookEndpoints,
    clock: Clock,
}

async fn create(
    State(w): State<Arc<Webhooks>>,
    caller: Authenticated,
    ApiJson(request): ApiJson<EndpointRequest>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    require_role(&caller, &[Role::ClinicAdmin])?;
    let (endpoint, secret) = w.endpoints.create(&caller.clinic_id, request, w.clock.now()).await?;
    let mut body = endpoint.view();
    body["secret"] = json!(secret.reveal());
    Ok((StatusCode::CREATED, Json(body)))
}

async fn list(State(w): State<Arc<Webhooks>>, caller: Authenticated) -> Result<Json<Value>, Problem> {
    require_role(&caller, &[Role::ClinicAdmin])?;
    let all = w.endpoints.list(&caller.clinic_id).await?;
    Ok(Json(json!({"items": all.iter().map(|e| e.view()).collect::<Vec<_>>()})))
}

async fn show(
    State(w): State<Arc<Webhooks>>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    require_role(&caller, &[Role::ClinicAdmin])?;
    match w.endpoints.get(&caller.clinic_id, &id).await? {
        Some(e) => Ok(Json(e.view())),
        None => Err(Problem::not_found("no such webhook endpoint")),
    }
}

async fn delete(
    State(w): State<Arc<Webhooks>>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    require_role(&caller, &[Role::ClinicAdmin])?;
    if w.endpoints.delete(&caller.clinic_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("no such webhook endpoint"))
    }
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, Error> {
    let state = Webhooks { endpoints: WebhookEndpoints::from_env(env, sdk)?, clock: Clock::system() };
    let one = format!("{ENDPOINTS}/{{endpoint_id}}");
    let routes = Router::new().route(ENDPOINTS, get(list).post(create)).route(&one, get(show).delete(delete));
    Ok(HttpFunction::audited(
        routes,
        state,
        Audit::from_env(env, sdk)?,
        vec![
            Audited::new(Method::POST, ENDPOINTS, "webhook.create", "webhook-endpoint", Subject::Created("endpointId")),
            Audited::new(Method::GET, ENDPOINTS, "webhook.list", "clinic", Subject::Clinic),
            Audited::new(Method::GET, one.clone(), "webhook.read", "webhook-endpoint", Subject::Path("endpoint_id")),
            Audited::new(Method::DELETE, one, "webhook.delete", "webhook-endpoint", Subject::Path("endpoint_id")),
        ],
    ))
}
