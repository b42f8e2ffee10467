//! `join-links`: one participant's short join link, and what opening it does.
//!
//! - `POST /v1/virtual-care/rooms/{roomId}/links` `{"userId"}` (a service,
//!   or the room's doctors and nurses) → 201 `{"url", "expiresAt"}`.
//! - `GET /j/{code}` (no JWT): inside the join window, 302 to the Jitsi
//!   join URL with a token minted now for the link's owner; before it, a
//!   page saying when it opens; unknown, expired, ended or cancelled: a 404
//!   page. Pages name no one, are never cached, and send no referrer (the
//!   redirect's URL carries the token).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use vcare_aws::SdkConfig;
use vcare_care::links::{Links, Opened};
use vcare_care::tokens::TokenIssuer;
use vcare_domain::room::{ParticipantRole, Standing};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem, Role};
use vcare_runtime::{Env, Error};

pub struct JoinLinks {
    issuer: TokenIssuer,
    links: Links,
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
    let clinician = matches!(standing, Standing::Participant(ParticipantRole::Doctor | ParticipantRole::Nurse));
    if !clinician && !caller.has_role(Role::Service) {
        return Err(Problem::forbidden("only a service or the room's doctors and nurses may make join links"));
    }
    let link = j.links.link_for(&j.issuer, &room, &body.user_id).await?;
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

async fn open(State(j): State<Arc<JoinLinks>>, Path(code): Path<String>) -> Response {
    match j.links.open(&j.issuer, &code, j.issuer.care.now()).await {
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
    let state = JoinLinks { issuer: TokenIssuer::from_env(env, sdk).await?, links: Links::from_env(env, sdk)? };
    let routes =
        Router::new().route("/v1/virtual-care/rooms/{room_id}/links", post(create)).route("/j/{code}", get(open));
    Ok(HttpFunction::serving(routes, state))
}
