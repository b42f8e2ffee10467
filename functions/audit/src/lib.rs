//! `audit`: `GET /v1/audit?subjectId=&actorId=&from=&to=&limit=&cursor=`.
//!
//! A clinic-admin reads their clinic's audit trail, newest first, from the
//! index the filter names (the subject's, the actor's, or the clinic's by
//! time) — never a scan. Other roles: 403; other clinics' records are not
//! there to be found. The query is itself an access, and audited.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use vcare_aws::SdkConfig;
use vcare_care::RoomError;
use vcare_domain::audit::AuditQuery;
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{Authenticated, HttpFunction, Problem, Role, require_role};
use vcare_runtime::Env;

pub const PATH: &str = "/v1/audit";

async fn query(
    State(audit): State<Arc<Audit>>,
    caller: Authenticated,
    RawQuery(raw): RawQuery,
) -> Result<Json<serde_json::Value>, Problem> {
    require_role(&caller, &[Role::ClinicAdmin])?;
    let raw = raw.unwrap_or_default();
    let pairs = vcare_http::query_pairs(&raw);
    let q = AuditQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let filter =
        vcare_care::audit::AuditFilter { subject_id: q.subject_id, actor_id: q.actor_id, from: q.from, to: q.to };
    let page = audit.query(&caller.clinic_id, &filter, q.cursor.as_deref(), q.limit).await.map_err(RoomError::from)?;
    let items: Vec<_> = page.items.iter().map(|r| r.view()).collect();
    let mut body = json!({"items": items});
    if let Some(next) = page.next_cursor {
        body["nextCursor"] = json!(next);
    }
    Ok(Json(body))
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new().route(PATH, get(query));
    let audit = Audit::from_env(env, sdk)?;
    Ok(HttpFunction::audited(
        routes,
        audit.clone(),
        audit,
        vec![Audited::new(Method::GET, PATH, "audit.read", "clinic", Subject::Clinic)],
    ))
}
