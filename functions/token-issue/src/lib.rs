//! `token-issue`: `POST /v1/virtual-care/rooms/{roomId}/tokens`.
//!
//! Body `{}` issues a token for the caller, who must be a participant; a
//! `service` may send `{"userId": ...}` for a participant. The token is the
//! room's provider's: Jitsi's (with `joinUrl`) or OpenVidu's (with
//! `serverUrl`). Warm cost: one DynamoDB read and, in HS256 mode, no KMS
//! call (secrets are decrypted at cold start); an OpenVidu room's first
//! token also makes its LiveKit room.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use vcare_aws::SdkConfig;
use vcare_care::RoomError;
use vcare_domain::events::DomainEvent;
use vcare_domain::requests::TokenRequest;
use vcare_domain::room::Standing;
use vcare_domain::video::ProviderKind;
use vcare_http::audit::{Audit, Audited, Method, Subject, WithRecord};
use vcare_http::{Authenticated, HttpFunction, Problem, Role, json_or_default};
use vcare_runtime::{Env, Error};

/// Token settings (API.md): `JITSI_APP_ID` (the token's `iss`),
/// `JITSI_AUDIENCE` (`aud`, default `jitsi`), and the signing mode
/// `JITSI_SIGNING`: `hs256` (default; `JITSI_APP_SECRET_CIPHERTEXT`, the app
/// secret encrypted under KMS) or `kms-rs256` (`JITSI_SIGNING_KEY_ID`, a KMS
/// RSA key; `JITSI_KID`; the public key is published as
/// `login/sha256hex(kid).pem` in `JITSI_PUBLIC_KEYS_BUCKET` for Prosody's
/// `asap_key_server`).
/// Where login-token public keys go in the keys bucket (Prosody's
/// `asap_key_server` points here).
pub use vcare_care::tokens::{LOGIN_KEYS_PREFIX, TokenIssuer};

pub async fn issuer(env: &Env, sdk: &SdkConfig) -> Result<TokenIssuer, Error> {
    TokenIssuer::from_env(env, sdk).await
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, Error> {
    let routes = Router::new().route("/v1/virtual-care/rooms/{room_id}/tokens", post(issue));
    Ok(HttpFunction::audited(
        routes,
        issuer(env, sdk).await?,
        Audit::from_env(env, sdk)?,
        vec![Audited::new(
            Method::POST,
            "/v1/virtual-care/rooms/{room_id}/tokens",
            "token.issue",
            "room",
            Subject::Path("room_id"),
        )],
    ))
}

async fn issue(
    State(issuer): State<Arc<TokenIssuer>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Extension<WithRecord>, Json<serde_json::Value>), Problem> {
    let request: TokenRequest = json_or_default(&body)?;
    let care = &issuer.care;
    let (room, standing) = care.room_for(&caller, &room_id).await?;
    let participant = match (&request.user_id, standing) {
        (Some(user), _) => {
            if !caller.has_role(Role::Service) {
                return Err(Problem::forbidden("only a service may ask a token for someone else"));
            }
            room.participant(user).ok_or_else(|| Problem::unprocessable("userId: not a participant of this room"))?
        }
        (None, Standing::Participant(_)) => room.participant(&caller.user_id).ok_or(RoomError::NoSuchRoom)?,
        (None, _) => return Err(Problem::forbidden("you are not a participant of this room")),
    };
    let now = care.now();
    room.joinable(&care.config.join, now).map_err(RoomError::not_joinable)?;
    if room.holds_back(participant) {
        // The waiting room: no token until a clinician admits them.
        return Err(RoomError::Waiting.into());
    }
    issuer.ensure_prepared(&room).await?;
    let minted = issuer.issue(&room, participant, now).await.map_err(|e| {
        tracing::error!(error = %e, "signing a join token failed");
        Problem::service_unavailable("tokens cannot be signed right now; try again")
    })?;
    // Written with the request's audit record, in its transaction.
    let issued = DomainEvent::token_issued(&room, participant, minted.moderator, minted.expires, now);
    let grant = if minted.moderator { "moderator" } else { "member" };
    vcare_runtime::metrics::count("TokensIssued", &[("grant", grant), ("provider", room.provider.as_str())]);
    let mut body = json!({
        "token": minted.token,
        "notBefore": minted.not_before,
        "expiresAt": minted.expires,
        "moderator": minted.moderator,
        "provider": room.provider.as_str(),
    });
    if let Some(url) = minted.join_url.filter(|_| room.provider == ProviderKind::Jitsi) {
        body["joinUrl"] = json!(url);
    }
    if let Some(url) = minted.server_url {
        body["serverUrl"] = json!(url);
    }
    // By phone: the clinic's numbers and the room's PIN, from the room read.
    if let Some(dial_in) = vcare_care::dial_in::token_dial_in(&issuer.care, &room) {
        body["dialIn"] = dial_in;
    }
    Ok((StatusCode::CREATED, Extension(WithRecord(vec![issued])), Json(body)))
}
