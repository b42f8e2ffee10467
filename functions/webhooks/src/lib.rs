//! `webhooks`: a clinic's webhook endpoints, for its clinic-admins (others
//! 403; another clinic's endpoint is not there, 404).
//!
//! - `POST /v1/webhooks/endpoints` `{"url", "eventTypes"}` → 201 with the
//!   endpoint and its `secret` (`whsec_…`), shown this once. A URL that is
//!   not https, resolves to no public address (private, loopback,
//!   link-local, metadata…) or not at all, unknown event types: 400; the
//!   clinic's limit reached: 422. Nothing is kept then.
//! - `GET /v1/webhooks/endpoints`, `GET` and `DELETE .../{endpointId}`.
//! - `GET .../{endpointId}/deliveries?limit=&cursor=`: its deliveries,
//!   newest event first, each with its tries (never an answer's body).
//! - `POST .../{endpointId}/deliveries/{deliveryId}/redeliver`: a delivery
//!   that is over is tried again now, with the same `webhook-id` (202);
//!   one still queued, or a disabled endpoint: 422.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_comms::webhook_deliveries::WebhookDeliveries;
use vcare_comms::webhooks::WebhookEndpoints;
use vcare_domain::webhooks::delivery::{DeliveryRecord, is_delivery_id};
use vcare_domain::webhooks::endpoint::{Endpoint, EndpointRequest};
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem, Role, require_role};
use vcare_runtime::{Clock, Env, Error};

const ENDPOINTS: &str = "/v1/webhooks/endpoints";

struct Webhooks {
    endpoints: WebhookEndpoints,
    deliveries: WebhookDeliveries,
    clock: Clock,
}

fn delivery_view(r: &DeliveryRecord) -> Value {
    let at = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "deliveryId": r.delivery_id,
        "eventId": r.event_id,
        "eventType": r.event_type,
        "state": r.state,
        "createdAt": at(&r.created_at),
        "nextAt": r.next_at.as_ref().map(at),
        "tries": r.tries.iter().map(|t| json!({"at": at(&t.at), "status": t.status, "result": t.result})).collect::<Vec<_>>(),
    })
}

/// The endpoint, if the caller's clinic has it.
async fn own_endpoint(w: &Webhooks, caller: &Authenticated, id: &str) -> Result<Endpoint, Problem> {
    w.endpoints.get(&caller.clinic_id, id).await?.ok_or_else(|| Problem::not_found("no such webhook endpoint"))
}

async fn log(
    State(w): State<Arc<Webhooks>>,
    caller: Authenticated,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Problem> {
    require_role(&caller, &[Role::ClinicAdmin])?;
    if let Some(unknown) = query.keys().find(|k| !matches!(k.as_str(), "limit" | "cursor")) {
        return Err(Problem::bad_request(format!("unknown query parameter {unknown}")));
    }
    let limit = match query.get("limit") {
        None => 20,
        Some(v) => v
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| Problem::bad_request("limit: 1 to 100"))?,
    };
    own_endpoint(&w, &caller, &id).await?;
    let (items, next) =
        w.deliveries.log(&caller.clinic_id, &id, query.get("cursor").map(String::as_str), limit).await?;
    Ok(Json(json!({"items": items.iter().map(delivery_view).collect::<Vec<_>>(), "nextCursor": next})))
}

async fn redeliver(
    State(w): State<Arc<Webhooks>>,
    caller: Authenticated,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    require_role(&caller, &[Role::ClinicAdmin])?;
    if !is_delivery_id(&delivery) {
        return Err(Problem::not_found("no such delivery"));
    }
    own_endpoint(&w, &caller, &id).await?;
    match w.deliveries.redeliver(&caller.clinic_id, &id, &delivery).await? {
        Some(r) => Ok((StatusCode::ACCEPTED, Json(json!({"deliveryId": r.delivery_id, "state": r.state})))),
        None => Err(Problem::not_found("no such delivery")),
    }
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
    Ok(Json(own_endpoint(&w, &caller, &id).await?.view()))
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
    let state = Webhooks {
        endpoints: WebhookEndpoints::from_env(env, sdk)?,
        deliveries: WebhookDeliveries::from_env(env, sdk)?,
        clock: Clock::system(),
    };
    let one = format!("{ENDPOINTS}/{{endpoint_id}}");
    let deliveries = format!("{one}/deliveries");
    let again = format!("{deliveries}/{{delivery_id}}/redeliver");
    let routes = Router::new()
        .route(ENDPOINTS, get(list).post(create))
        .route(&one, get(show).delete(delete))
        .route(&deliveries, get(log))
        .route(&again, post(redeliver));
    Ok(HttpFunction::audited(
        routes,
        state,
        Audit::from_env(env, sdk)?,
        vec![
            Audited::new(Method::POST, ENDPOINTS, "webhook.create", "webhook-endpoint", Subject::Created("endpointId")),
            Audited::new(Method::GET, ENDPOINTS, "webhook.list", "clinic", Subject::Clinic),
            Audited::new(Method::GET, one.clone(), "webhook.read", "webhook-endpoint", Subject::Path("endpoint_id")),
            Audited::new(Method::DELETE, one, "webhook.delete", "webhook-endpoint", Subject::Path("endpoint_id")),
            Audited::new(
                Method::GET,
                deliveries,
                "webhook.deliveries",
                "webhook-endpoint",
                Subject::Path("endpoint_id"),
            ),
            Audited::new(Method::POST, again, "webhook.redeliver", "webhook-delivery", Subject::Path("delivery_id")),
        ],
    ))
}
