//! `join-links`: one participant's short join link, and what opening it does.
//!
//! - `POST /v1/virtual-care/rooms/{roomId}/links` `{"userId"}` (a service,
//!   or the room's doctors and nurses for themselves or a patient or
//!   interpreter; 403 otherwise, 409 for an ended or cancelled room) → 201
//!   `{"url", "expiresAt"}`.
//! - `GET /j/{code}` (no JWT): inside the join window, 302 to the Jitsi
//!   join URL with a token minted now for the link's owner; before it, a
//!   page saying when it opens; unknown, expired, ended or cancelled: a 404
//!   page. Pages name no one, are never cached, and send no referrer (the
//!   redirect's URL carries the token).
//! - For a patient or interpreter the room's waiting room holds back,
//!   `GET /j/{code}` is the waiting page ([`page`]), which calls
//!   `POST /j/{code}/check-in` and polls `GET /j/{code}/status`
//!   (`{"status": "waiting" | "admitted" | "not-checked-in" | "closed"}`)
//!   until it is let in, then opens `/j/{code}` again.

mod page;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use vcare_aws::SdkConfig;
use vcare_care::links::{Links, Opened};
use vcare_care::tokens::TokenIssuer;
use vcare_domain::room::Standing;
use vcare_domain::room_records::LinkMaker;
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem, Role};
use vcare_runtime::{Env, Error};
use vcare_waiting_room::WaitingRoom;

pub struct JoinLinks {
    issuer: TokenIssuer,
    /// A link's token is no caller's request: recorded by the link's code.
    audit: Audit,
    links: Links,
    waiting: WaitingRoom,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LinkRequest {
    user_id: String,
}

async fn create(
    State(j): State<Arc<JoinLinks>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<LinkRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    let (room, standing) = j.issuer.care.room_for(&caller, &room_id).await?;
    let maker = match (caller.has_role(Role::Service), standing) {
        (true, _) => LinkMaker::Service,
        (false, Standing::Participant(role)) => LinkMaker::Caller { user_id: &caller.user_id, role: Some(role) },
        (false, _) => LinkMaker::Caller { user_id: &caller.user_id, role: None },
    };
    let link = j.links.link_for(&j.issuer, &room, &body.user_id, maker, &caller.user_id).await?;
    Ok((StatusCode::CREATED, Json(json!({"url": j.links.url(&link), "expiresAt": link.valid_until}))))
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    (status, headers, html).into_response()
}

/// The waiting page, in the browser's language.
fn waiting_page(query: &HashMap<String, String>, headers: &HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let texts = page::negotiate(query.get("lang").map(String::as_str), accept);
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
        (header::CACHE_CONTROL, "no-store".to_owned()),
        (header::REFERRER_POLICY, "no-referrer".to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (header::CONTENT_SECURITY_POLICY, page::policy(&nonce)),
        (header::CONTENT_LANGUAGE, texts.lang.to_owned()),
    ];
    (StatusCode::OK, headers, page::render(texts, &nonce)).into_response()
}

/// The waiting page's calls: the link is the credential; a dead link is
/// 404, a room no longer joinable `closed`.
async fn lobby_call(j: &JoinLinks, code: &str, check_in: bool) -> Result<Json<serde_json::Value>, Problem> {
    let now = j.issuer.care.now();
    let (room, link) = j.links.resolve(code, now).await?.ok_or_else(|| Problem::not_found("no such link"))?;
    let user = link.user_id;
    if room.joinable(&j.issuer.care.config.join, now).is_err() {
        return Ok(Json(json!({"status": "closed"})));
    }
    let mut answer = if check_in {
        j.waiting.check_in(&room, &user).await?.view()
    } else {
        let participant = room.participant(&user).ok_or_else(|| Problem::not_found("no such link"))?;
        json!({"status": room.lobby_status(participant).as_str()})
    };
    // Dial-in for who has a phone but no data connection (the clinic's numbers, the room's PIN).
    if let Some(dial_in) = vcare_care::dial_in::token_dial_in(&j.issuer.care, &room) {
        answer["dialIn"] = dial_in;
    }
    Ok(Json(answer))
}

async fn link_check_in(
    State(j): State<Arc<JoinLinks>>,
    Path(code): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    lobby_call(&j, &code, true).await
}

async fn link_status(
    State(j): State<Arc<JoinLinks>>,
    Path(code): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    lobby_call(&j, &code, false).await
}

async fn open(
    State(j): State<Arc<JoinLinks>>,
    Path(code): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    request: axum::http::request::Parts,
) -> Response {
    let origin = vcare_http::audit::origin(&request.extensions);
    match j.links.open(&j.issuer, &j.audit, &code, j.issuer.care.now(), origin).await {
        Ok(Opened::Waiting) => waiting_page(&query, &headers),
        Ok(Opened::Join(url)) => {
            let headers = [
                (header::LOCATION, url),
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (header::REFERRER_POLICY, "no-referrer".to_owned()),
            ];
            (StatusCode::FOUND, headers).into_response()
        }
        Ok(Opened::NotYet(opens)) => {
            let at = opens.format("%Y-%m-%d %H:%M UTC");
            let text = format!(
                "Your video consultation opens for joining at <time datetime=\"{}\">{at}</time>. Open this link again then.",
                opens.to_rfc3339()
            );
            page(StatusCode::OK, "Not open yet", &text)
        }
        Ok(Opened::Gone) => page(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This link is unknown, has expired, or its consultation has ended.",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "a join link could not be opened");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The consultation cannot be reached right now. Please try again in a minute.",
            )
        }
    }
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, Error> {
    let audit = Audit::from_env(env, sdk)?;
    let state = JoinLinks {
        issuer: TokenIssuer::from_env(env, sdk).await?,
        audit: audit.clone(),
        links: Links::from_env(env, sdk)?,
        waiting: WaitingRoom::from_env(env, sdk)?,
    };
    let routes = Router::new()
        .route("/v1/virtual-care/rooms/{room_id}/links", post(create))
        .route("/j/{code}", get(open))
        .route("/j/{code}/check-in", post(link_check_in))
        .route("/j/{code}/status", get(link_status));
    Ok(HttpFunction::audited(
        routes,
        state,
        audit,
        vec![Audited::new(
            Method::POST,
            "/v1/virtual-care/rooms/{room_id}/links",
            "link.create",
            "room",
            Subject::Path("room_id"),
        )],
    ))
}
