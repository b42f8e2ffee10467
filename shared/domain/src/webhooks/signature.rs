//! The Standard Webhooks signature (standardwebhooks.com, "Signature
//! scheme"): `v1,<base64 HMAC-SHA-256>` over `<webhook-id>.<webhook-timestamp>.<body>`
//! with the endpoint's secret, shown to the clinic once as `whsec_<base64>`.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const PREFIX: &str = "whsec_";

/// An endpoint's signing secret: 32 random bytes. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl Secret {
    /// From its bytes (24 to 64: the spec's range).
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (24..=64).contains(&bytes.len()).then_some(Self(bytes))
    }

    /// As the clinic is shown it once: `whsec_<base64>`.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// From `whsec_<base64>`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::from_bytes(STANDARD.decode(text.strip_prefix(PREFIX)?).ok()?)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The `webhook-signature` header's value for one delivery.
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret.0);
    let mut context = hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_signs_as_published() {
        // standard-webhooks' reference libraries' test vector.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_round_trip_and_never_print() {
        let secret = Secret::from_bytes(vec![7; 32]).unwrap();
        assert_eq!(Secret::parse(&secret.reveal()), Some(secret.clone()));
        assert_eq!(format!("{secret:?}"), "Secret(redacted)");
        assert!(Secret::from_bytes(vec![1; 8]).is_none());
        assert!(Secret::parse("sk_abc").is_none());
    }
}
