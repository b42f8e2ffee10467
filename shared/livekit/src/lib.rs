//! OpenVidu 3 speaks LiveKit's API; this is vcare's side of it.
//!
//! - [`Credentials`]: the API key and secret (the secret KMS-encrypted
//!   under the purpose [`SECRET_PURPOSE`], decrypted once per container);
//!   participant tokens are HS256 over `vcare_domain::video::livekit`'s claims.
//! - [`RoomService`]: the Twirp JSON calls vcare makes, each with a server
//!   token carrying only that call's grant, timeouts and retries.
//! - [`RoomService::start_egress`] and its stop and lookup: OpenVidu's
//!   recordings, LiveKit egress writing straight to the recordings bucket.
//! - [`Credentials::verify_webhook`]: a webhook's `Authorization` JWT and the
//!   SHA-256 of the bytes received.
//!
//! Why not the `livekit-api` crate: with only `access-token` and
//! `webhooks` it brings `livekit-protocol` (the whole protobuf schema
//! through prost and pbjson), a second `jsonwebtoken` (10, next to our 11),
//! a second base64 and RustCrypto's sha2/hmac next to aws-lc — 107 crates
//! for an HMAC over JSON that vcare already signs for Jitsi.

mod egress;
mod room_service;
mod webhook;

pub use egress::S3Target;
pub use room_service::{Health, LiveParticipant, RoomService, RoomSettings, TwirpError, probe};
pub use webhook::WebhookRefused;

use aws_lc_rs::hmac;
use serde_json::Value;

/// The encryption context the API secret is encrypted under (the gateway's
/// `OpenViduApiSecretCiphertext`, as `aws kms encrypt` makes it).
pub const SECRET_PURPOSE: &str = "open-vidu-api-secret";

#[derive(Debug, thiserror::Error)]
pub enum LiveKitError {
    #[error("KMS: {0}")]
    Kms(String),
    #[error("config: {0}")]
    Config(String),
}

/// The API key and its secret: kept out of `Debug` and logs.
pub struct Credentials {
    pub api_key: String,
    signing: hmac::Key,
    verifying: jsonwebtoken::DecodingKey,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ..)", self.api_key)
    }
}

impl Credentials {
    pub fn new(api_key: impl Into<String>, secret: &[u8]) -> Self {
        Self {
            api_key: api_key.into(),
            signing: hmac::Key::new(hmac::HMAC_SHA256, secret),
            verifying: jsonwebtoken::DecodingKey::from_secret(secret),
        }
    }

    /// Decrypts the KMS ciphertext (base64) of the API secret.
    pub async fn decrypt(
        kms: &aws_sdk_kms::Client,
        api_key: impl Into<String>,
        ciphertext_b64: &str,
    ) -> Result<Self, LiveKitError> {
        let secret = vcare_crypto::decrypt_secret(kms, ciphertext_b64, SECRET_PURPOSE)
            .await
            .map_err(|e| LiveKitError::Kms(e.to_string()))?;
        Ok(Self::new(api_key, &secret))
    }

    /// An HS256 token of `claims`, as LiveKit verifies it.
    pub fn sign(&self, claims: &Value) -> String {
        vcare_crypto::jws::hs256(&self.signing, claims)
    }
}
