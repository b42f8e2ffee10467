//! Jitsi join tokens, exactly as Prosody's `token/util.lib.lua` and
//! `mod_token_affiliation` check them:
//!
//! - header `{"alg": "HS256" | "RS256", "typ": "JWT"}` (+ `kid` for RS256,
//!   which Prosody's ASAP mode uses to fetch `sha256hex(kid).pem`);
//! - `iss` = the app id (Prosody's accepted issuers default to it), `aud` a
//!   string, `sub` = the Jitsi domain in lowercase, `room` = the lowercase
//!   room name (Prosody compares the MUC node to `string.lower(room)`);
//! - `iat`, `nbf`, `exp` in seconds; Prosody allows no clock skew, so `nbf`
//!   is never later than the moment of issue;
//! - `context.user` with string fields, `context.features` always explicit.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vcare_crypto::jws;
use vcare_domain::room::{Participant, ParticipantRole, Room};

#[derive(Debug, thiserror::Error)]
pub enum JitsiError {
    #[error("KMS: {0}")]
    Kms(String),
    #[error("config: {0}")]
    Config(String),
}

/// Who the token is for and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub moderator: bool,
    pub recording: bool,
    /// Not held in Prosody's lobby: clinicians, anyone in a room without a
    /// lobby, and patients vcare's waiting room admitted.
    pub lobby_bypass: bool,
}

/// Doctors moderate (affiliation `owner`); everyone else is a member. Only a
/// doctor may record, and only in a recording room whose every listed
/// patient has said yes (`Room::may_record`); nobody livestreams. A
/// token for someone vcare holds back (a reminder's token before
/// admission) sends them to Prosody's lobby.
pub fn grant(room: &Room, participant: &Participant) -> Grant {
    let doctor = participant.role == ParticipantRole::Doctor;
    Grant { moderator: doctor, recording: doctor && room.may_record(), lobby_bypass: !room.holds_back(participant) }
}

/// The token's claims.
#[derive(Debug, Clone)]
pub struct TokenClaims {
    pub app_id: String,
    pub audience: String,
    pub domain: String,
    pub room: String,
    pub user_id: String,
    pub user_name: String,
    pub grant: Grant,
    pub issued_at: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

impl TokenClaims {
    pub fn to_json(&self) -> Value {
        let flag = |b: bool| if b { "true" } else { "false" };
        json!({
            "iss": self.app_id,
            "aud": self.audience,
            "sub": self.domain.to_lowercase(),
            "room": self.room.to_lowercase(),
            "iat": self.issued_at.timestamp(),
            // Never later than now: Prosody would refuse a token not yet valid.
            "nbf": self.not_before.min(self.issued_at).timestamp(),
            "exp": self.expires.timestamp(),
            "context": {
                "user": {
                    "id": self.user_id,
                    "name": self.user_name,
                    "moderator": flag(self.grant.moderator),
                    "affiliation": if self.grant.moderator { "owner" } else { "member" },
                    // jitsi-contrib's token_lobby_bypass reads `lobby_bypass`,
                    // token_lobby_ondemand `lobby` (both booleans, in context.user).
                    "lobby_bypass": self.grant.lobby_bypass,
                    "lobby": !self.grant.lobby_bypass,
                },
                "features": {
                    "recording": flag(self.grant.recording),
                    "livestreaming": "false",
                    "transcription": "false",
                    "outbound-call": "false",
                },
            },
        })
    }
}

/// The Jitsi app secret: kept out of `Debug` and logs.
pub struct AppSecret(Vec<u8>);

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppSecret(..)")
    }
}

/// The encryption context the app secret is encrypted under: a ciphertext
/// made for anything else does not decrypt as the Jitsi secret.
pub const SECRET_CONTEXT: (&str, &str) = ("vcare:purpose", "jitsi-app-secret");

impl AppSecret {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Decrypts the KMS ciphertext (base64) once per container.
    pub async fn decrypt(kms: &aws_sdk_kms::Client, ciphertext_b64: &str) -> Result<Self, JitsiError> {
        decrypt_secret(kms, ciphertext_b64, SECRET_CONTEXT.1)
            .await
            .map(Self)
            .map_err(|e| JitsiError::Kms(e.to_string()))
    }
}

pub use vcare_crypto::decrypt_secret;

/// The shared secret Prosody sends in `X-Jitsi-Shared-Secret`.
pub struct WebhookSecret(Vec<u8>);

pub const WEBHOOK_SECRET_PURPOSE: &str = "jitsi-webhook-secret";

impl WebhookSecret {
    pub async fn decrypt(kms: &aws_sdk_kms::Client, ciphertext_b64: &str) -> Result<Self, JitsiError> {
        decrypt_secret(kms, ciphertext_b64, WEBHOOK_SECRET_PURPOSE)
            .await
            .map(Self)
            .map_err(|e| JitsiError::Kms(e.to_string()))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Compares in constant time (for equal lengths; the length is not secret).
    pub fn matches(&self, presented: Option<&[u8]>) -> bool {
        presented.is_some_and(|p| aws_lc_rs::constant_time::verify_slices_are_equal(p, &self.0).is_ok())
    }
}

/// How tokens are signed.
pub enum Signer {
    /// The app secret Prosody is configured with (`app_secret`).
    Hs256(Box<hmac::Key>),
    /// A KMS RSA key (Prosody `asap_key_server`): one KMS call per token.
    KmsRs256 { kms: aws_sdk_kms::Client, key_id: String, kid: String },
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hs256(_) => f.write_str("Signer::Hs256"),
            Self::KmsRs256 { kid, .. } => write!(f, "Signer::KmsRs256({kid})"),
        }
    }
}

impl Signer {
    pub fn hs256(secret: &AppSecret) -> Self {
        Self::Hs256(Box::new(hmac::Key::new(hmac::HMAC_SHA256, &secret.0)))
    }

    /// Signs `claims` as a compact JWS.
    pub async fn sign(&self, claims: &Value) -> Result<String, JitsiError> {
        match self {
            Self::Hs256(key) => Ok(jws::hs256(key, claims)),
            Self::KmsRs256 { kms, key_id, kid } => {
                let input = jws::signing_input(&json!({"alg": "RS256", "typ": "JWT", "kid": kid}), claims);
                let signature = kms
                    .sign()
                    .key_id(key_id)
                    .message(aws_sdk_kms::primitives::Blob::new(input.as_bytes()))
                    .message_type(aws_sdk_kms::types::MessageType::Raw)
                    .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
                    .send()
                    .await
                    .map_err(|e| JitsiError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?
                    .signature
                    .ok_or_else(|| JitsiError::Kms("no signature".into()))?
                    .into_inner();
                Ok(jws::compact(&input, &signature))
            }
        }
    }
}

impl Signer {
    /// A KMS RS256 signer whose public key is published (once, at cold
    /// start) as `<prefix>sha256hex(kid).pem` in `bucket`, where Prosody's
    /// `asap_key_server` (login tokens, prefix `login/`) or
    /// `prosody_password_public_key_repo_url` (system tokens for
    /// mod_muc_end_meeting, prefix `system/`) fetch it. The two must be
    /// separate key pairs in separate places: the end-meeting check is not
    /// bound to a room, so a login key there would let any participant end
    /// any meeting.
    pub async fn kms_rs256_published(
        kms: aws_sdk_kms::Client,
        s3: &aws_sdk_s3::Client,
        key_id: String,
        kid: String,
        bucket: &str,
        prefix: &str,
    ) -> Result<Self, JitsiError> {
        let public = kms
            .get_public_key()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|e| JitsiError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
        let der = public.public_key.ok_or_else(|| JitsiError::Kms("no public key".into()))?.into_inner();
        s3.put_object()
            .bucket(bucket)
            .key(format!("{prefix}{}", asap_key_name(&kid)))
            .content_type("application/x-pem-file")
            .body(public_key_pem(&der).into_bytes().into())
            .send()
            .await
            .map_err(|e| {
                JitsiError::Config(format!("publishing the public key: {}", aws_sdk_s3::error::DisplayErrorContext(e)))
            })?;
        tracing::info!(kid = %kid, "published the Jitsi ASAP public key");
        Ok(Self::KmsRs256 { kms, key_id, kid })
    }
}

/// Asks Prosody's `mod_muc_end_meeting` to end a conference:
/// `POST <url>?conference=<room>@<muc domain>` with a short-lived system
/// token (RS256, `room: "*"`), retried with backoff on failure. 200 and 404
/// (no such conference: already gone) are success.
pub struct EndMeeting {
    pub url: String,
    pub muc_domain: String,
    pub app_id: String,
    pub domain: String,
    pub signer: Signer,
    pub http: reqwest::Client,
    pub attempts: u32,
    pub backoff: std::time::Duration,
}

impl EndMeeting {
    /// Ends `room`; its system token is issued at `now` (valid 5 minutes,
    /// for every retry).
    pub async fn end(&self, room: &str, now: DateTime<Utc>) -> Result<(), String> {
        let now = now.timestamp();
        let mut last = String::new();
        for attempt in 0..self.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.backoff * 4u32.pow(attempt - 1)).await;
            }
            let claims = json!({"iss": self.app_id, "aud": "jitsi", "sub": self.domain, "room": "*", "iat": now, "nbf": now, "exp": now + 300});
            let token = self.signer.sign(&claims).await.map_err(|e| e.to_string())?;
            let conference = format!("{}@{}", room.to_lowercase(), self.muc_domain);
            let query: String =
                form_urlencoded::Serializer::new(String::new()).append_pair("conference", &conference).finish();
            let separator = if self.url.contains('?') { '&' } else { '?' };
            let sent = self.http.post(format!("{}{separator}{query}", self.url)).bearer_auth(token).send().await;
            match sent {
                Ok(r) if r.status().is_success() || r.status() == reqwest::StatusCode::NOT_FOUND => return Ok(()),
                Ok(r) => last = format!("Jitsi answered {}", r.status()),
                Err(e) => {
                    last =
                        format!("Jitsi unreachable: {}", if e.is_timeout() { "timeout" } else { "connection failed" })
                }
            }
            tracing::warn!(attempt = attempt + 1, error = %last, "ending the Jitsi meeting failed");
        }
        Err(last)
    }
}

/// Where Prosody's ASAP mode fetches the public key of `kid`:
/// `<asap_key_server>/<hex sha256(kid)>.pem`.
pub fn asap_key_name(kid: &str) -> String {
    format!("{}.pem", vcare_domain::digest::sha256_hex(kid.as_bytes()))
}

/// A DER SubjectPublicKeyInfo (what KMS GetPublicKey returns) as PEM.
pub fn public_key_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asap_key_names_are_sha256_hex_of_the_kid() {
        // sha256("abc")
        assert_eq!(asap_key_name("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.pem");
    }
}
