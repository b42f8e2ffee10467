//! `token-issue`: `POST /v1/virtual-care/rooms/{roomId}/tokens`.
//!
//! Body `{}` issues a token for the caller, who must be a participant; a
//! `service` may send `{"userId": ...}` for a participant. Warm cost: one
//! DynamoDB read and, in HS256 mode, no KMS call (the app secret was
//! decrypted at cold start).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use vcare_aws::SdkConfig;
use vcare_care::{Care, CareConfig};
use vcare_domain::room::{NotJoinable, Standing};
use vcare_http::{Caller, HttpFunction, Problem, Role, json_or_default};
use vcare_jitsi::{AppSecret, Signer, TokenClaims, grant};
use vcare_runtime::{ConfigError, Env, Error};

/// Token settings (API.md): `JITSI_APP_ID` (the token's `iss`),
/// `JITSI_AUDIENCE` (`aud`, default `jitsi`), and the signing mode
/// `JITSI_SIGNING`: `hs256` (default; `JITSI_APP_SECRET_CIPHERTEXT`, the app
/// secret encrypted under KMS) or `kms-rs256` (`JITSI_SIGNING_KEY_ID`, a KMS
/// RSA key; `JITSI_KID`; the public key is published as
/// `login/sha256hex(kid).pem` in `JITSI_PUBLIC_KEYS_BUCKET` for Prosody's
/// `asap_key_server`).
/// Where login-token public keys go in the keys bucket (Prosody's
/// `asap_key_server` points here).
pub const LOGIN_KEYS_PREFIX: &str = "login/";

pub struct TokenIssuer {
    care: Care,
    app_id: String,
    audience: String,
    signer: Signer,
}

pub async fn issuer(env: &Env, sdk: &SdkConfig) -> Result<TokenIssuer, Error> {
    // Plain settings first: a missing one fails the cold start before any KMS call.
    let care = Care::new(CareConfig::from_env(env)?, sdk);
    let app_id = env.required("JITSI_APP_ID")?;
    let audience = env.get("JITSI_AUDIENCE").unwrap_or("jitsi").to_owned();
    let kms = aws_sdk_kms::Client::new(sdk);
    let signer = match env.get("JITSI_SIGNING").unwrap_or("hs256") {
        "hs256" => {
            let ciphertext = env.required("JITSI_APP_SECRET_CIPHERTEXT")?;
            Signer::hs256(&AppSecret::decrypt(&kms, &ciphertext).await?)
        }
        "kms-rs256" => {
            let key_id = env.required("JITSI_SIGNING_KEY_ID")?;
            let kid = env.get("JITSI_KID").unwrap_or("vcare-jitsi-1").to_owned();
            let bucket = env.required("JITSI_PUBLIC_KEYS_BUCKET")?;
            Signer::kms_rs256_published(kms, &aws_sdk_s3::Client::new(sdk), key_id, kid, &bucket, LOGIN_KEYS_PREFIX)
                .await?
        }
        other => {
            return Err(ConfigError::Invalid {
                name: "JITSI_SIGNING".into(),
                reason: format!("{other:?}: hs256 or kms-rs256"),
            }
            .into());
        }
    };
    Ok(TokenIssuer { care, app_id, audience, signer })
}

pub fn router(issuer: Arc<TokenIssuer>) -> Router {
    Router::new().route("/v1/virtual-care/rooms/{room_id}/tokens", post(issue)).with_state(issuer)
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, Error> {
    Ok(HttpFunction::new(router(Arc::new(issuer(env, sdk).await?))))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRequest {
    user_id: Option<String>,
}

async fn issue(
    State(issuer): State<Arc<TokenIssuer>>,
    caller: Caller,
    Path(room_id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
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
        (None, Standing::Participant(_)) => room.participant(&caller.user_id).ok_or_else(vcare_care::no_room)?,
        (None, _) => return Err(Problem::forbidden("you are not a participant of this room")),
    };
    let now = care.now();
    let policy = &care.config.join;
    match room.joinable(policy, now) {
        Ok(()) => {}
        Err(NotJoinable::Closed(status)) => return Err(Problem::conflict(format!("the room is {}", status.as_str()))),
        Err(NotJoinable::TooEarly { opens }) => {
            return Err(Problem::conflict(format!("the room opens for joining at {}", opens.to_rfc3339())));
        }
        Err(NotJoinable::TooLate) => return Err(Problem::conflict("the consultation's join window has closed")),
    }
    let claims = TokenClaims {
        app_id: issuer.app_id.clone(),
        audience: issuer.audience.clone(),
        domain: care.config.jitsi_domain.clone(),
        room: room.jitsi_room.clone(),
        user_id: participant.user_id.clone(),
        user_name: participant.display_name.clone(),
        grant: grant(&room, participant),
        issued_at: now,
        not_before: policy.opens(&room),
        expires: policy.closes(&room),
    };
    let token = issuer.signer.sign(&claims.to_json()).await.map_err(|e| {
        tracing::error!(error = %e, "signing a join token failed");
        Problem::service_unavailable("tokens cannot be signed right now; try again")
    })?;
    let not_before = claims.not_before.min(now);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "joinUrl": format!("{}?jwt={token}", care.join_url(&room)),
            "notBefore": not_before,
            "expiresAt": claims.expires,
            "moderator": claims.grant.moderator,
        })),
    ))
}
