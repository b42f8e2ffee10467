//! The audit trail at the edge (issue 21): every route that reads or
//! changes personal or clinical data names its action and subject here,
//! and each request an authenticated caller makes of it leaves exactly one
//! record — `allowed` when it succeeded (2xx), `denied` when it was refused
//! (403, 404). Other answers (400, 409, 422, 5xx) served and changed
//! nothing, and leave none.
//!
//! The record is written after the handler and before the answer is handed
//! back: a caller never holds data whose record is not stored. A record
//! that cannot be written turns the answer into a 503, its body dropped.
//! A crash before the record means no answer left (a change made then is
//! answered to the caller's retry, which has its record).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
pub use http::Method;
use http::StatusCode;
use lambda_http::request::RequestContext;
use vcare_care::audit::Access;
pub use vcare_care::audit::Audit;
use vcare_domain::audit::Outcome;
use vcare_domain::events::DomainEvent;

use crate::Problem;
use crate::caller::caller_of;

/// Whose data a route touches.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    /// The path parameter of this name.
    Path(&'static str),
    /// The query parameter of this name.
    Query(&'static str),
    /// This member of the answer's JSON body (what a create made).
    Created(&'static str),
    /// The caller's own data.
    Caller,
    /// The caller's clinic as a whole (a list of its templates).
    Clinic,
}

/// One audited route: its method and path as routed, what it does, to what.
#[derive(Debug, Clone)]
pub struct Audited {
    pub method: Method,
    pub path: String,
    pub action: &'static str,
    pub subject_type: &'static str,
    pub subject: Subject,
}

impl Audited {
    pub fn new(
        method: Method,
        path: impl Into<String>,
        action: &'static str,
        subject_type: &'static str,
        subject: Subject,
    ) -> Self {
        Self { method, path: path.into(), action, subject_type, subject }
    }
}

/// Events a handler asks to be written with its request's record, in the
/// same transaction (a response extension): `virtual_care.token.issued`
/// exists exactly when the token's record does.
#[derive(Debug, Clone)]
pub struct WithRecord(pub Vec<DomainEvent>);

pub(crate) struct Trail {
    pub audit: Audit,
    pub routes: Vec<Audited>,
}

/// Largest answer body read to find a created subject (answers are vcare's
/// own small JSON).
const MAX_READ: usize = 1024 * 1024;

/// An id as recorded: what the route was given, bounded, never a value
/// that could be personal text.
fn bounded(id: &str) -> String {
    id.chars().take(128).collect()
}

/// The request's id and source address as API Gateway gave them, bounded
/// (empty where there is no API Gateway context).
pub fn origin(extensions: &http::Extensions) -> (String, String) {
    match extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => (
            bounded(ctx.request_id.as_deref().unwrap_or_default()),
            bounded(ctx.http.source_ip.as_deref().unwrap_or_default()),
        ),
        _ => (String::new(), String::new()),
    }
}

pub(crate) async fn record(
    State(trail): State<Arc<Trail>>,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Response {
    let matched = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let Some(route) =
        trail.routes.iter().find(|r| r.method == request.method() && Some(r.path.as_str()) == matched.as_deref())
    else {
        return next.run(request).await;
    };
    let Ok(caller) = caller_of(request.extensions(), request.headers()) else {
        // No caller: the handler answers 401 and nothing was accessed.
        return next.run(request).await;
    };
    let (request_id, source_ip) = origin(request.extensions());
    let named = match route.subject {
        Subject::Path(name) => params.ok().and_then(|p| p.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_owned())),
        Subject::Query(name) => request
            .uri()
            .query()
            .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())),
        Subject::Caller => Some(caller.user_id.clone()),
        Subject::Clinic => Some(caller.clinic_id.clone()),
        Subject::Created(_) => None,
    };
    let mut response = next.run(request).await;
    let status = response.status();
    let outcome = match status {
        s if s.is_success() => Outcome::Allowed,
        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Outcome::Denied,
        _ => return response,
    };
    let subject_id = match (route.subject, named) {
        (_, Some(id)) => id,
        (Subject::Created(member), None) if outcome == Outcome::Allowed => {
            let (parts, body) = response.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_READ).await else {
                return unaudited();
            };
            let id = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get(member).and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_default();
            response = Response::from_parts(parts, Body::from(bytes));
            id
        }
        _ => String::new(),
    };
    let events = response.extensions_mut().remove::<WithRecord>().map(|w| w.0).unwrap_or_default();
    let access = Access {
        clinic_id: caller.clinic_id.clone(),
        actor_id: caller.user_id.clone(),
        actor_roles: caller.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        action: route.action.into(),
        subject_type: route.subject_type.into(),
        subject_id: bounded(&subject_id),
        outcome,
        request_id: bounded(&request_id),
        source_ip: bounded(&source_ip),
        granted_by: None,
    };
    match trail.audit.record(access, &events).await {
        Ok(_) => response,
        Err(e) => {
            tracing::error!(action = route.action, error = %e, "an access could not be audited; not served");
            unaudited()
        }
    }
}

fn unaudited() -> Response {
    Problem::service_unavailable("this could not be recorded in the audit trail; try again").into_response()
}
