//! `preferences`: what a patient wants, and what a clinic must honour.
//!
//! - `GET`/`PUT /v1/communication/recipients/{userId}/preferences` and
//!   `GET .../consents`: the patient themself, or a clinic-admin or service
//!   of the clinic. A `PUT` is checked as a whole (unknown channels or
//!   categories are 400, nothing kept) and every channel or category it
//!   turns on or off is a line of the append-only consent history.
//! - `GET`/`DELETE /v1/communication/suppressions?channel=&address=`
//!   (clinic-admin): the address is hashed before it is looked up; a
//!   `DELETE` needs a reason, which the history keeps.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_comms::{AddressChange, Notifications, checked_address};
use vcare_domain::consent::{ConsentSource, PreferencesUpdate};
use vcare_domain::ids::is_valid_external_id;
use vcare_domain::notification::Channel;
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem, Role, require_role};
use vcare_runtime::Env;

const RECIPIENTS: &str = "/v1/communication/recipients";
const SUPPRESSIONS: &str = "/v1/communication/suppressions";
const MAX_REASON_CHARS: usize = 500;

/// The patient themself, or the clinic's admins and services.
fn may_see(caller: &Authenticated, user: &str) -> Result<(), Problem> {
    if !is_valid_external_id(user) {
        return Err(Problem::bad_request("userId: 1 to 128 of A-Z a-z 0-9 . _ : @ -"));
    }
    if caller.user_id == user || caller.has_any_role(&[Role::ClinicAdmin, Role::Service]) {
        Ok(())
    } else {
        Err(Problem::forbidden("only the recipient, or the clinic's admins and services, may do this"))
    }
}

async fn show(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Path(user): Path<String>,
) -> Result<Json<Value>, Problem> {
    may_see(&caller, &user)?;
    Ok(Json(comms.preferences(&caller.clinic_id, &user).await?.view(&user)))
}

async fn change(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Path(user): Path<String>,
    ApiJson(update): ApiJson<PreferencesUpdate>,
) -> Result<Json<Value>, Problem> {
    may_see(&caller, &user)?;
    let now = comms.clock.now();
    let saved = comms.update_preferences(&caller.clinic_id, &user, &update, &caller.user_id, now).await?;
    Ok(Json(saved.view(&user)))
}

/// The query's parameters, only those named.
fn params(query: &HashMap<String, String>, known: &[&str]) -> Result<(), Problem> {
    match query.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(Problem::bad_request(format!("unknown query parameter {unknown}"))),
        None => Ok(()),
    }
}

async fn consents(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Path(user): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Problem> {
    may_see(&caller, &user)?;
    params(&query, &["cursor"])?;
    let cursor = query.get("cursor").map(String::as_str).filter(|c| !c.is_empty());
    if cursor.is_some_and(|c| c.len() > 256) {
        return Err(Problem::bad_request("cursor: not a cursor this list gave"));
    }
    let page = comms.consents(&caller.clinic_id, &user, cursor).await?;
    Ok(Json(json!({"items": page.items, "nextCursor": page.next_cursor})))
}

/// `?channel=&address=`, checked. An unencoded `+` in a query reads as a
/// space: a number is taken either way.
fn address(query: &HashMap<String, String>) -> Result<(Channel, String), Problem> {
    params(query, &["channel", "address"])?;
    let (Some(channel), Some(address)) = (query.get("channel"), query.get("address")) else {
        return Err(Problem::bad_request("channel and address are required"));
    };
    let a = address.trim_end();
    let address = match a.strip_prefix(' ') {
        Some(rest) if rest.bytes().all(|b| b.is_ascii_digit()) => format!("+{rest}"),
        _ => a.to_owned(),
    };
    Ok((checked_address(channel, &address)?, address))
}

async fn suppression(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Problem> {
    require_role(&caller, &[Role::ClinicAdmin])?;
    let (channel, address) = address(&query)?;
    Ok(Json(match comms.suppression(&caller.clinic_id, channel, &address).await? {
        Some(s) => json!({"suppressed": true, "since": s.since, "source": s.source}),
        None => json!({"suppressed": false}),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lift {
    reason: String,
}

async fn lift(
    State(comms): State<Arc<Notifications>>,
    caller: Authenticated,
    Query(query): Query<HashMap<String, String>>,
    ApiJson(body): ApiJson<Lift>,
) -> Result<StatusCode, Problem> {
    require_role(&caller, &[Role::ClinicAdmin])?;
    let (channel, address) = address(&query)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(Problem::bad_request(format!("reason: 1 to {MAX_REASON_CHARS} characters")));
    }
    let hash = comms.address_hash(channel, &address).await?;
    let change = AddressChange {
        channel,
        hash: &hash,
        user: None,
        source: ConsentSource::Admin,
        by: &caller.user_id,
        reason: Some(reason),
        at: comms.clock.now(),
    };
    if comms.lift(&caller.clinic_id, &change).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("the address is not suppressed"))
    }
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new()
        .route(&format!("{RECIPIENTS}/{{user}}/preferences"), get(show).put(change))
        .route(&format!("{RECIPIENTS}/{{user}}/consents"), get(consents))
        .route(SUPPRESSIONS, get(suppression).delete(lift));
    Ok(HttpFunction::audited(
        routes,
        Notifications::from_env(env, sdk)?,
        Audit::from_env(env, sdk)?,
        vec![
            Audited::new(
                Method::GET,
                format!("{RECIPIENTS}/{{user}}/preferences"),
                "preferences.read",
                "user",
                Subject::Path("user"),
            ),
            Audited::new(
                Method::PUT,
                format!("{RECIPIENTS}/{{user}}/preferences"),
                "preferences.change",
                "user",
                Subject::Path("user"),
            ),
            Audited::new(
                Method::GET,
                format!("{RECIPIENTS}/{{user}}/consents"),
                "consents.read",
                "user",
                Subject::Path("user"),
            ),
            Audited::new(Method::GET, SUPPRESSIONS, "suppression.read", "channel", Subject::Query("channel")),
            Audited::new(Method::DELETE, SUPPRESSIONS, "suppression.lift", "channel", Subject::Query("channel")),
        ],
    ))
}
