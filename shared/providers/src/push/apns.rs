//! Apple Push Notification service.

use crate::catalogue::Settings;
use crate::prelude::*;

/// Apple Push Notification service, token-based: `POST {base}/3/device/{token}`
/// over HTTP/2 with a provider JWT (ES256, `kid` = key id, `iss` = team id,
/// `iat`), reused for 50 minutes as Apple asks. `apns-topic` = the app's
/// bundle id. 410 `Unregistered` and 400 `BadDeviceToken` are dead tokens;
/// 403 `ExpiredProviderToken`/`InvalidProviderToken` renew the JWT (transient);
/// 429 and 5xx are transient.
pub struct Apns {
    pub(crate) base_url: String,
    pub(crate) topic: String,
    pub(crate) team_id: String,
    pub(crate) key_id: String,
    key: jsonwebtoken::EncodingKey,
    pub(crate) http: reqwest::Client,
    cached: std::sync::Mutex<Option<(String, std::time::Instant)>>,
}

impl Apns {
    /// `private_key_pem`: the `.p8` key Apple issues (PKCS#8, P-256).
    pub fn new(
        base_url: String,
        topic: String,
        team_id: String,
        key_id: String,
        private_key_pem: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        let key = jsonwebtoken::EncodingKey::from_ec_pem(private_key_pem.as_bytes())
            .map_err(|_| "the APNs key is not a P-256 PEM key".to_owned())?;
        // Apple speaks HTTP/2 only: negotiated by ALPN over TLS, or with prior
        // knowledge over plain HTTP (a local stand-in).
        let builder = reqwest::Client::builder().timeout(timeout).connect_timeout(Duration::from_secs(2));
        let builder = if base_url.starts_with("http://") { builder.http2_prior_knowledge() } else { builder };
        let http = builder.build().map_err(|e| e.to_string())?;
        Ok(Self { base_url, topic, team_id, key_id, key, http, cached: std::sync::Mutex::new(None) })
    }

    fn provider_token(&self) -> Result<String, SendOutcome> {
        if let Some((token, until)) = self.cached.lock().expect("lock").clone()
            && std::time::Instant::now() < until
        {
            return Ok(token);
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let token = jsonwebtoken::encode(&header, &json!({"iss": self.team_id, "iat": now}), &self.key)
            .map_err(|_| SendOutcome::Permanent { reason: "apns: the key cannot sign".into() })?;
        *self.cached.lock().expect("lock") =
            Some((token.clone(), std::time::Instant::now() + Duration::from_secs(50 * 60)));
        Ok(token)
    }
}

impl Apns {
    /// Built from its settings ([`ProviderId::settings`]).
    pub(crate) fn build(s: &Settings<'_>) -> Result<Self, String> {
        Self::new(
            s.or("APNS_BASE_URL", "https://api.push.apple.com"),
            s.get("APNS_TOPIC").to_owned(),
            s.get("APNS_TEAM_ID").to_owned(),
            s.get("APNS_KEY_ID").to_owned(),
            s.secret("APNS_PRIVATE_KEY").expose(),
            s.wiring.timeout,
        )
    }
}

impl Provider for Apns {
    fn id(&self) -> ProviderId {
        ProviderId::Apns
    }
    fn platform(&self) -> Option<vcare_domain::notification::PushPlatform> {
        Some(vcare_domain::notification::PushPlatform::Apns)
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, SendOutcome> {
        Box::pin(async move {
            let token = match self.provider_token() {
                Ok(t) => t,
                Err(outcome) => return outcome,
            };
            if m.to.is_empty() || !m.to.bytes().all(|b| b.is_ascii_hexdigit()) {
                return SendOutcome::DeadToken { reason: "apns: not a device token".into() };
            }
            let body = json!({"aps": {"alert": {"title": m.subject.unwrap_or("vcare"), "body": m.body}, "sound": "default"}, "reference": m.reference});
            let sent = self
                .http
                .post(format!("{}/3/device/{}", self.base_url.trim_end_matches('/'), m.to))
                .header("authorization", format!("bearer {token}"))
                .header("apns-topic", &self.topic)
                .header("apns-push-type", "alert")
                .header("apns-priority", "10")
                .json(&body)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(_) => return SendOutcome::Transient { reason: "apns unreachable".into(), retry_after: None },
            };
            let status = response.status().as_u16();
            let id = response.headers().get("apns-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let retry = retry_after(response.headers());
            let reason = response
                .json::<Value>()
                .await
                .ok()
                .and_then(|b| b["reason"].as_str().map(str::to_owned))
                .unwrap_or_default();
            match (status, reason.as_str()) {
                (200, _) => SendOutcome::Sent { provider_message_id: id.unwrap_or_else(|| m.reference.to_owned()) },
                (410, _) | (400, "BadDeviceToken") | (400, "DeviceTokenNotForTopic") => {
                    SendOutcome::DeadToken { reason: format!("apns: {status} {reason}") }
                }
                (403, "ExpiredProviderToken" | "InvalidProviderToken") => {
                    *self.cached.lock().expect("lock") = None;
                    SendOutcome::Transient { reason: format!("apns: {reason}"), retry_after: None }
                }
                (429, _) | (500..=599, _) => {
                    SendOutcome::Transient { reason: format!("apns answered {status}"), retry_after: retry }
                }
                _ => SendOutcome::Permanent { reason: format!("apns refused: {status} {reason}") },
            }
        })
    }
}
