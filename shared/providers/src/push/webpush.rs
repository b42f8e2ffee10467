//! Web Push: RFC 8030 delivery, RFC 8291 message encryption (`aes128gcm`),
//! RFC 8292 VAPID. The recipient's token is the browser's PushSubscription
//! JSON: `{"endpoint", "keys": {"p256dh", "auth"}}`.

use std::time::Duration;

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::error::Unspecified;
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use vcare_domain::notification::PushPlatform;
use vcare_domain::push::PushEndpoints;
use vcare_runtime::BoxFuture;

use crate::catalogue::Settings;
use crate::public_dns::PublicOnly;
use crate::{Outgoing, Provider, ProviderId, SendOutcome, retry_after};

/// Record size announced in the header; a push message is one record.
const RECORD_SIZE: u32 = 4096;

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Result<Vec<u8>, Unspecified> {
    let prk = Salt::new(HKDF_SHA256, salt).extract(ikm);
    let info = [info];
    let okm = prk.expand(&info, Len(len)).map_err(|_| Unspecified)?;
    let mut out = vec![0u8; len];
    okm.fill(&mut out).map_err(|_| Unspecified)?;
    Ok(out)
}

/// Encrypts `payload` for a subscription (`ua_public`: its 65-byte P-256
/// point, `auth`: its 16-byte secret) as one `aes128gcm` record (RFC 8291).
pub fn encrypt(payload: &[u8], ua_public: &[u8], auth: &[u8]) -> Result<Vec<u8>, Unspecified> {
    let ephemeral =
        EphemeralPrivateKey::generate(&ECDH_P256, &aws_lc_rs::rand::SystemRandom::new()).map_err(|_| Unspecified)?;
    let as_public = ephemeral.compute_public_key().map_err(|_| Unspecified)?.as_ref().to_vec();
    let ecdh =
        agreement::agree_ephemeral(ephemeral, UnparsedPublicKey::new(&ECDH_P256, ua_public), Unspecified, |s| {
            Ok(s.to_vec())
        })?;
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(&as_public);
    let ikm = hkdf(auth, &ecdh, &key_info, 32)?;
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| Unspecified)?;
    let cek = hkdf(&salt, &ikm, b"Content-Encoding: aes128gcm\0", 16)?;
    let nonce = hkdf(&salt, &ikm, b"Content-Encoding: nonce\0", 12)?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &cek).map_err(|_| Unspecified)?);
    let mut record = payload.to_vec();
    record.push(0x02); // the last (and only) record's padding delimiter
    key.seal_in_place_append_tag(
        Nonce::try_assume_unique_for_key(&nonce).map_err(|_| Unspecified)?,
        Aad::empty(),
        &mut record,
    )
    .map_err(|_| Unspecified)?;
    let mut out = salt.to_vec();
    out.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    out.push(as_public.len() as u8);
    out.extend_from_slice(&as_public);
    out.extend_from_slice(&record);
    Ok(out)
}

/// The VAPID application server key (P-256) and contact.
pub struct WebPush {
    key: jsonwebtoken::EncodingKey,
    public_b64: String,
    pub(crate) subject: String,
    /// Its own client: no redirects, public addresses only.
    http: reqwest::Client,
    endpoints: PushEndpoints,
    pub(crate) ttl: Duration,
}

impl WebPush {
    /// From the VAPID private key as PKCS#8 PEM and a `mailto:`/`https:`
    /// subject; calls only `endpoints` (checked again at send), never
    /// follows a redirect, and connects only to public addresses (loopback
    /// too when the policy allows it, for tests).
    pub fn new(
        private_pem: &str,
        subject: String,
        endpoints: PushEndpoints,
        timeout: Duration,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(PublicOnly { allow_loopback: endpoints.allow_loopback }))
            .build()
            .map_err(|_| "the Web Push HTTP client cannot be built")?;
        let der = pem_body(private_pem).ok_or("the VAPID key is not a PEM private key")?;
        let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &der,
        )
        .map_err(|_| "the VAPID key is not a P-256 PKCS#8 key")?;
        let public_b64 = URL_SAFE_NO_PAD.encode(aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref());
        let key =
            jsonwebtoken::EncodingKey::from_ec_pem(private_pem.as_bytes()).map_err(|_| "the VAPID key cannot sign")?;
        Ok(Self { key, public_b64, subject, http, endpoints, ttl: Duration::from_secs(86_400) })
    }

    /// The application server key browsers subscribe with.
    pub fn public_key(&self) -> &str {
        &self.public_b64
    }
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()
}

/// `https://push.example.net/...` → `https://push.example.net`.
fn origin(endpoint: &str) -> Option<String> {
    let (scheme, rest) = endpoint.split_once("://")?;
    let host = rest.split('/').next()?;
    Some(format!("{scheme}://{host}"))
}

impl WebPush {
    /// Built from its settings ([`ProviderId::settings`]).
    pub(crate) fn build(s: &Settings<'_>) -> Result<Self, String> {
        Self::new(
            s.secret("VAPID_PRIVATE_KEY").expose(),
            s.get("VAPID_SUBJECT").to_owned(),
            s.wiring.push_endpoints.clone(),
            s.wiring.timeout,
        )
    }
}

impl Provider for WebPush {
    fn id(&self) -> ProviderId {
        ProviderId::WebPush
    }
    fn platform(&self) -> Option<PushPlatform> {
        Some(PushPlatform::Webpush)
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, SendOutcome> {
        Box::pin(async move {
            let dead = |why: &str| SendOutcome::DeadToken { reason: format!("webpush: {why}") };
            let Ok(sub) = serde_json::from_str::<Value>(m.to) else { return dead("subscription is not JSON") };
            let (Some(endpoint), Some(p256dh), Some(auth)) =
                (sub["endpoint"].as_str(), sub["keys"]["p256dh"].as_str(), sub["keys"]["auth"].as_str())
            else {
                return dead("subscription lacks endpoint or keys");
            };
            let (Ok(ua_public), Ok(auth)) = (
                URL_SAFE_NO_PAD.decode(p256dh.trim_end_matches('=')),
                URL_SAFE_NO_PAD.decode(auth.trim_end_matches('=')),
            ) else {
                return dead("subscription keys are not base64url");
            };
            // Accept checked it; a stored subscription is checked again (the
            // policy may have changed, or the store been written around it).
            if self.endpoints.check(endpoint).is_err() {
                return SendOutcome::Permanent {
                    reason: "webpush: the endpoint is not a push service vcare may call".into(),
                };
            }
            let Some(audience) = origin(endpoint) else { return dead("subscription endpoint is not a URL") };
            let payload =
                json!({"title": m.subject.unwrap_or("vcare"), "body": m.body, "reference": m.reference}).to_string();
            let Ok(body) = encrypt(payload.as_bytes(), &ua_public, &auth) else {
                return dead("subscription key is not a P-256 point");
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let claims = json!({"aud": audience, "exp": now + 12 * 3600, "sub": self.subject});
            let Ok(jwt) =
                jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256), &claims, &self.key)
            else {
                return SendOutcome::Permanent { reason: "webpush: the VAPID key cannot sign".into() };
            };
            let sent = self
                .http
                .post(endpoint)
                .header("content-encoding", "aes128gcm")
                .header("content-type", "application/octet-stream")
                .header("ttl", self.ttl.as_secs().to_string())
                .header("urgency", "high")
                .header("authorization", format!("vapid t={jwt}, k={}", self.public_b64))
                .body(body)
                .send()
                .await;
            match sent {
                Err(_) => SendOutcome::Transient { reason: "webpush service unreachable".into(), retry_after: None },
                Ok(r) => match r.status().as_u16() {
                    200..=299 => SendOutcome::Sent {
                        provider_message_id: r
                            .headers()
                            .get("location")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                            .unwrap_or_else(|| m.reference.to_owned()),
                    },
                    404 | 410 => dead("subscription expired"),
                    429 | 500..=599 => SendOutcome::Transient {
                        reason: format!("webpush answered {}", r.status().as_u16()),
                        retry_after: retry_after(r.headers()),
                    },
                    other => SendOutcome::Permanent { reason: format!("webpush refused: {other}") },
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_pem() -> String {
        let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(pair.to_pkcs8v1().unwrap().as_ref());
        format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
    }

    /// A subscription for `endpoint` with a real browser key.
    fn subscription(endpoint: &str) -> String {
        let ua = aws_lc_rs::agreement::PrivateKey::generate(&ECDH_P256).unwrap();
        let public = ua.compute_public_key().unwrap();
        json!({"endpoint": endpoint, "keys": {"p256dh": URL_SAFE_NO_PAD.encode(public.as_ref()), "auth": URL_SAFE_NO_PAD.encode([7u8; 16])}})
            .to_string()
    }

    async fn send(push: &WebPush, endpoint: &str) -> SendOutcome {
        let to = subscription(endpoint);
        let m = Outgoing { reference: "att_1", to: &to, subject: None, body: "hi", html: None, callback_query: None };
        push.send(&m).await
    }

    #[tokio::test]
    async fn an_endpoint_off_the_list_or_resolving_to_loopback_is_never_called() {
        // A listener that counts who reaches it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let reached = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = reached.clone();
        tokio::spawn(async move {
            while let Ok((_conn, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let strict = PushEndpoints::parse("localhost", false).unwrap();
        let push = WebPush::new(&key_pem(), "mailto:ops@vcare.example".into(), strict, Duration::from_secs(2)).unwrap();
        // Refused by the list before any connection: http, an IP, another host.
        for endpoint in [
            format!("http://127.0.0.1:{port}/x"),
            format!("https://127.0.0.1:{port}/x"),
            format!("http://localhost:{port}/x"),
            "https://attacker.example/x".to_owned(),
        ] {
            assert!(matches!(send(&push, &endpoint).await, SendOutcome::Permanent { .. }), "{endpoint}");
        }
        // Listed, https, but the name resolves to loopback only: no address to connect to.
        let outcome = send(&push, &format!("https://localhost:{port}/x")).await;
        assert!(matches!(outcome, SendOutcome::Transient { .. }), "{outcome:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing reached the loopback listener");

        // With loopback allowed (tests), the same name is reached.
        let loose = PushEndpoints::parse("localhost", true).unwrap();
        let push =
            WebPush::new(&key_pem(), "mailto:ops@vcare.example".into(), loose, Duration::from_millis(300)).unwrap();
        let _ = send(&push, &format!("http://localhost:{port}/x")).await;
        assert!(reached.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    }
}
