//! Verifying LiveKit's webhooks: `Authorization` is a JWT (no `Bearer`)
//! signed with the API secret, `iss` the API key, no `sub`, and a `sha256`
//! claim, the base64 SHA-256 of the body. The hash is of the bytes as
//! received — never of a re-serialisation.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use vcare_domain::video::livekit::WEBHOOK_LEEWAY_SECONDS;

use crate::Credentials;

/// Why a webhook is refused (401). Said in logs by kind only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRefused {
    #[error("no Authorization header")]
    Missing,
    #[error("the token does not verify (signature, issuer or times)")]
    BadToken,
    #[error("the token is for a participant, not a webhook")]
    NotAWebhook,
    #[error("the body's SHA-256 is not the token's")]
    BodyMismatch,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    sub: Option<String>,
}

impl Credentials {
    pub fn verify_webhook(&self, authorization: Option<&[u8]>, body: &[u8]) -> Result<(), WebhookRefused> {
        let token =
            authorization.and_then(|a| std::str::from_utf8(a).ok()).map(str::trim).ok_or(WebhookRefused::Missing)?;
        if token.is_empty() {
            return Err(WebhookRefused::Missing);
        }
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&[&self.api_key]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.leeway = WEBHOOK_LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.verifying, &validation)
            .map_err(|_| WebhookRefused::BadToken)?
            .claims;
        if claims.sub.is_some_and(|s| !s.is_empty()) {
            return Err(WebhookRefused::NotAWebhook);
        }
        let expected = claims.sha256.and_then(|h| STANDARD.decode(h).ok()).ok_or(WebhookRefused::NotAWebhook)?;
        let actual = digest::digest(&digest::SHA256, body);
        aws_lc_rs::constant_time::verify_slices_are_equal(actual.as_ref(), &expected)
            .map_err(|_| WebhookRefused::BodyMismatch)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn signed(creds: &Credentials, claims: serde_json::Value) -> String {
        creds.sign(&claims)
    }

    fn hash(body: &[u8]) -> String {
        STANDARD.encode(digest::digest(&digest::SHA256, body))
    }

    #[test]
    fn only_the_body_signed_verifies() {
        let creds = Credentials::new("key", b"secret");
        let now = chrono::Utc::now().timestamp();
        let body = br#"{"event":"room_finished"}"#;
        let good = signed(&creds, json!({"iss": "key", "nbf": now, "exp": now + 300, "sha256": hash(body)}));
        assert_eq!(creds.verify_webhook(Some(good.as_bytes()), body), Ok(()));
        // The same JSON re-serialised with a space is other bytes.
        assert_eq!(
            creds.verify_webhook(Some(good.as_bytes()), br#"{"event": "room_finished"}"#),
            Err(WebhookRefused::BodyMismatch)
        );
        assert_eq!(creds.verify_webhook(None, body), Err(WebhookRefused::Missing));
        let bearer = format!("Bearer {good}");
        assert_eq!(creds.verify_webhook(Some(bearer.as_bytes()), body), Err(WebhookRefused::BadToken));
        let other = Credentials::new("key", b"other secret");
        let forged = signed(&other, json!({"iss": "key", "nbf": now, "exp": now + 300, "sha256": hash(body)}));
        assert_eq!(creds.verify_webhook(Some(forged.as_bytes()), body), Err(WebhookRefused::BadToken));
        let stale = signed(&creds, json!({"iss": "key", "nbf": now - 900, "exp": now - 600, "sha256": hash(body)}));
        assert_eq!(creds.verify_webhook(Some(stale.as_bytes()), body), Err(WebhookRefused::BadToken));
        let issuer = signed(&creds, json!({"iss": "another", "nbf": now, "exp": now + 300, "sha256": hash(body)}));
        assert_eq!(creds.verify_webhook(Some(issuer.as_bytes()), body), Err(WebhookRefused::BadToken));
        let participant =
            signed(&creds, json!({"iss": "key", "sub": "u-1", "nbf": now, "exp": now + 300, "sha256": hash(body)}));
        assert_eq!(creds.verify_webhook(Some(participant.as_bytes()), body), Err(WebhookRefused::NotAWebhook));
        let unhashed = signed(&creds, json!({"iss": "key", "nbf": now, "exp": now + 300}));
        assert_eq!(creds.verify_webhook(Some(unhashed.as_bytes()), body), Err(WebhookRefused::NotAWebhook));
    }
}
