//! `templates`: a clinic's own message templates.
//!
//! - `PUT /v1/communication/templates/{name}` (clinic-admin): a new,
//!   immutable version that becomes the active one, checked whole first
//!   (unknown variables, syntax errors, loops, a locale without an SMS or
//!   e-mail text: 422; nothing kept).
//! - `GET /v1/communication/templates` and `GET .../{name}?version=N`
//!   (every clinic role but patient): the clinic's and the built-ins they
//!   do not shadow.
//! - `POST .../{name}/preview`: rendered with sample variables, with the
//!   SMS encoding and segment count.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_comms::Notifications;
use vcare_comms::templates::PreviewRequest;
use vcare_domain::templates::{Template, TemplateDraft, is_template_name};
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem, Role, require_role};
use vcare_runtime::Env;

const TEMPLATES: &str = "/v1/communication/templates";
const READERS: &[Role] = &[Role::Doctor, Role::Nurse, Role::Interpreter, Role::ClinicAdmin, Role::Service];

fn name_ok(name: &str) -> Result<(), Problem> {
    if is_template_name(name) { Ok(()) } else { Err(Problem::bad_request("name: 1 to 64 of a-z 0-9 -")) }
}

/// `?version=N` (N ≥ 1), the only parameter.
fn version(query: &HashMap<String, String>) -> Result<Option<u64>, Problem> {
    if let Some(unknown) = query.keys().find(|k| k.as_str() != "version") {
        return Err(Problem::bad_request(format!("unknown query parameter {unknown}")));
    }
    query
        .get("version")
        .map(|v| v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| Problem::bad_request("version: 1 or more")))
        .transpose()
}

fn summary(t: &Template) -> Value {
    json!({
        "name": t.name, "version": t.version, "builtIn": t.version.is_none(), "category": t.category,
        "variables": t.variables, "locales": t.locales.keys().collect::<Vec<_>>(), "createdAt": t.created_at,
    })
}

fn full(t: &Template) -> Value {
    json!({
        "name": t.name, "version": t.version, "builtIn": t.version.is_none(), "category": t.category,
        "variables": t.variables, "locales": t.locales, "replies": t.replies, "defaultLocale": t.default_locale,
        "createdAt": t.created_at, "createdBy": t.created_by,
    })
}

async fn save(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Path(name): Path<String>,
    ApiJson(draft): ApiJson<TemplateDraft>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    require_role(&caller, &[Role::ClinicAdmin])?;
    name_ok(&name)?;
    let saved = comms.save_template(&caller.clinic_id, &name, draft, &caller.user_id, comms.clock.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": saved.name, "version": saved.version, "createdAt": saved.created_at})),
    ))
}

async fn list(State(comms): State<Arc<Notifications>>, caller: Authenticated) -> Result<Json<Value>, Problem> {
    require_role(&caller, READERS)?;
    let all = comms.template_list(&caller.clinic_id).await?;
    Ok(Json(json!({"items": all.iter().map(summary).collect::<Vec<_>>()})))
}

async fn show(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Problem> {
    require_role(&caller, READERS)?;
    name_ok(&name)?;
    match comms.template(&caller.clinic_id, &name, version(&query)?).await? {
        Some(t) => Ok(Json(full(&t))),
        None => Err(Problem::not_found("no such template (or version)")),
    }
}

async fn preview(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<PreviewRequest>,
) -> Result<Json<Value>, Problem> {
    require_role(&caller, READERS)?;
    name_ok(&name)?;
    let p = comms.preview(&caller.clinic_id, &name, request).await?;
    Ok(Json(json!({
        "locale": p.locale, "subject": p.rendered.subject, "body": p.rendered.body, "html": p.rendered.html,
        "sms": p.sms,
    })))
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new()
        .route(TEMPLATES, get(list))
        .route(&format!("{TEMPLATES}/{{name}}"), get(show).put(save))
        .route(&format!("{TEMPLATES}/{{name}}/preview"), post(preview));
    Ok(HttpFunction::audited(
        routes,
        Notifications::from_env(env, sdk)?,
        Audit::from_env(env, sdk)?,
        vec![
            Audited::new(Method::GET, TEMPLATES, "template.list", "clinic", Subject::Clinic),
            Audited::new(
                Method::GET,
                format!("{TEMPLATES}/{{name}}"),
                "template.read",
                "template",
                Subject::Path("name"),
            ),
            Audited::new(
                Method::PUT,
                format!("{TEMPLATES}/{{name}}"),
                "template.save",
                "template",
                Subject::Path("name"),
            ),
            Audited::new(
                Method::POST,
                format!("{TEMPLATES}/{{name}}/preview"),
                "template.preview",
                "template",
                Subject::Path("name"),
            ),
        ],
    ))
}
