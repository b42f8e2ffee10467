//! Provider adapters. Each speaks its provider's documented wire format and
//! classifies what happened:
//! - `Sent`: accepted, with the provider's message id;
//! - `Transient`: may work later (timeouts, 429 with Retry-After, 5xx);
//! - `Permanent`: will not work with this provider for this recipient
//!   (invalid number or address, unregistered token): not retried.
//!
//! Nothing here logs the recipient or the text.

pub mod public_dns;
mod webpush;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vcare_domain::notification::Channel;
use vcare_runtime::BoxFuture;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        provider_message_id: String,
    },
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    Permanent {
        reason: String,
    },
    /// The push token is dead (unregistered, invalid): drop it.
    DeadToken {
        reason: String,
    },
}

/// One message for one provider. `reference` is vcare's attempt id: the
/// provider echoes it in delivery receipts. `callback_query` (already
/// URL-encoded, e.g. `ref=…&sig=…`) is added to the adapter's receipt URL.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub reference: &'a str,
    pub to: &'a str,
    pub subject: Option<&'a str>,
    pub body: &'a str,
    pub callback_query: Option<&'a str>,
}

/// An adapter's receipt URL for one message.
fn callback(base: &Option<String>, m: &Outgoing<'_>) -> Option<String> {
    let base = base.as_ref()?;
    Some(match m.callback_query {
        Some(q) => format!("{base}{}{q}", if base.contains('?') { '&' } else { '?' }),
        None => base.clone(),
    })
}

pub mod receipts;
pub use webpush::{WebPush, encrypt as webpush_encrypt};

pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;
    fn channel(&self) -> Channel;
    /// For push adapters: the token platform they send to.
    fn platform(&self) -> Option<vcare_domain::notification::PushPlatform> {
        None
    }
    fn send<'a>(&'a self, message: &'a Outgoing<'a>) -> BoxFuture<'a, Outcome>;
    /// Whether the provider will post delivery receipts for what it sends.
    fn sends_receipts(&self) -> bool {
        false
    }
}

/// The HTTP client every adapter uses: bounded timeouts.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).connect_timeout(Duration::from_secs(2)).build().unwrap_or_default()
}

pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The common HTTP classification: 2xx is the caller's to read; 429 and 5xx
/// are transient (with Retry-After); other 4xx permanent; network failures
/// and timeouts transient.
async fn classify(
    sent: Result<reqwest::Response, reqwest::Error>,
    provider: &str,
    read_id: impl FnOnce(&reqwest::header::HeaderMap, Value) -> Option<String>,
    permanent: impl FnOnce(StatusCode, &Value) -> bool,
) -> Outcome {
    let response = match sent {
        Ok(r) => r,
        Err(e) => {
            let reason = if e.is_timeout() { "timed out" } else { "unreachable" };
            return Outcome::Transient { reason: format!("{provider} {reason}"), retry_after: None };
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return match read_id(&headers, body) {
            Some(id) if !id.is_empty() => Outcome::Sent { provider_message_id: id },
            _ => Outcome::Transient {
                reason: format!("{provider} answered {status} without a message id"),
                retry_after: None,
            },
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() || !permanent(status, &body) {
        return Outcome::Transient {
            reason: format!("{provider} answered {}", status.as_u16()),
            retry_after: retry_after(&headers),
        };
    }
    Outcome::Permanent { reason: format!("{provider} refused: {}", status.as_u16()) }
}

/// The in-country SMS gateway (API.md): `POST {base}/v1/messages`, Bearer
/// API key, JSON `{to, from, text, reference, callbackUrl}` → `{messageId}`.
/// 4xx other than 429 are permanent.
pub struct GatewaySms {
    pub base_url: String,
    pub api_key: String,
    pub from: String,
    /// Where the gateway posts receipts; `ref` is added per message.
    pub callback_url: Option<String>,
    pub http: reqwest::Client,
}

impl Provider for GatewaySms {
    fn name(&self) -> &'static str {
        "gateway"
    }
    fn sends_receipts(&self) -> bool {
        self.callback_url.is_some()
    }
    fn channel(&self) -> Channel {
        Channel::Sms
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let mut body = json!({"to": m.to, "from": self.from, "text": m.body, "reference": m.reference});
            if let Some(cb) = callback(&self.callback_url, m) {
                body["callbackUrl"] = json!(cb);
            }
            let sent = self
                .http
                .post(format!("{}/v1/messages", self.base_url.trim_end_matches('/')))
                .bearer_auth(&self.api_key)
                .json(&body)
                .send()
                .await;
            classify(sent, "gateway", |_, b| b["messageId"].as_str().map(str::to_owned), |_, _| true).await
        })
    }
}

/// Twilio Programmable Messaging: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`,
/// form-encoded `To`, `From`, `Body`, `StatusCallback`, HTTP basic auth
/// (account SID, auth token) → 201 `{sid}`. Twilio's error `code` tells
/// permanent refusals (21211 invalid To, 21610 unsubscribed, 21614 not a
/// mobile number, ...) from transient ones.
pub struct Twilio {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    pub status_callback: Option<String>,
    pub http: reqwest::Client,
}

impl Provider for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }
    fn sends_receipts(&self) -> bool {
        self.status_callback.is_some()
    }
    fn channel(&self) -> Channel {
        Channel::Sms
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let form = {
                let mut form = form_urlencoded::Serializer::new(String::new());
                form.append_pair("To", m.to).append_pair("From", &self.from).append_pair("Body", m.body);
                if let Some(cb) = callback(&self.status_callback, m) {
                    form.append_pair("StatusCallback", &cb);
                }
                form.finish()
            };
            let url = format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                self.base_url.trim_end_matches('/'),
                self.account_sid
            );
            let sent = self
                .http
                .post(url)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await;
            classify(
                sent,
                "twilio",
                |_, b| b["sid"].as_str().map(str::to_owned),
                |status, b| {
                    // 400 with a known recipient error is permanent; 401/403/404 (our
                    // credentials or account) are permanent for this provider too.
                    status != StatusCode::BAD_REQUEST || b["code"].as_u64().is_some()
                },
            )
            .await
        })
    }
}

/// Vonage SMS API: `POST {base}/sms/json`, JSON `{api_key, api_secret, to,
/// from, text, client-ref, callback}` (`to` without the `+`). Vonage answers
/// 200 even for refusals: each message carries a `status` — "0" sent; 1
/// (throttled), 5 (internal error) and 9 (quota) transient; anything else
/// (invalid number, barred, unroutable, ...) permanent.
pub struct Vonage {
    pub base_url: String,
    pub api_key: String,
    pub api_secret: String,
    pub from: String,
    pub callback_url: Option<String>,
    pub http: reqwest::Client,
}

impl Provider for Vonage {
    fn name(&self) -> &'static str {
        "vonage"
    }
    fn sends_receipts(&self) -> bool {
        self.callback_url.is_some()
    }
    fn channel(&self) -> Channel {
        Channel::Sms
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let mut body = json!({
                "api_key": self.api_key, "api_secret": self.api_secret, "to": m.to.trim_start_matches('+'),
                "from": self.from, "text": m.body, "type": "unicode", "client-ref": m.reference,
            });
            if let Some(cb) = callback(&self.callback_url, m) {
                body["callback"] = json!(cb);
            }
            let sent =
                self.http.post(format!("{}/sms/json", self.base_url.trim_end_matches('/'))).json(&body).send().await;
            let mut refusal: Option<(String, bool)> = None;
            let outcome = classify(
                sent,
                "vonage",
                |_, b| {
                    let first = &b["messages"][0];
                    match first["status"].as_str() {
                        Some("0") => first["message-id"].as_str().map(str::to_owned),
                        Some(code) => {
                            refusal = Some((code.to_owned(), matches!(code, "1" | "5" | "9")));
                            None
                        }
                        None => None,
                    }
                },
                |_, _| true,
            )
            .await;
            match refusal {
                Some((code, true)) => Outcome::Transient { reason: format!("vonage status {code}"), retry_after: None },
                Some((code, false)) => Outcome::Permanent { reason: format!("vonage refused: status {code}") },
                None => outcome,
            }
        })
    }
}

/// Firebase Cloud Messaging HTTP v1: `POST {base}/v1/projects/{project}/messages:send`
/// with an OAuth2 access token. The token comes from the service account:
/// an RS256 JWT (`iss` = client e-mail, `scope` = firebase.messaging, `aud` =
/// token URI) exchanged at the token URI (`jwt-bearer` grant), cached until a
/// minute before it expires. `UNREGISTERED` / 404 and `INVALID_ARGUMENT` on
/// the token are dead tokens; 401 drops the cached token; 429 and 5xx are
/// transient.
pub struct Fcm {
    pub base_url: String,
    pub project_id: String,
    pub client_email: String,
    pub token_uri: String,
    key: jsonwebtoken::EncodingKey,
    pub http: reqwest::Client,
    cached: std::sync::Mutex<Option<(String, std::time::Instant)>>,
}

pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

impl Fcm {
    /// From a service-account key file's JSON (`client_email`,
    /// `private_key`, `token_uri`); `token_uri` may be overridden.
    pub fn from_service_account(
        json: &str,
        project_id: String,
        base_url: String,
        token_uri: Option<String>,
        http: reqwest::Client,
    ) -> Result<Self, String> {
        let sa: Value = serde_json::from_str(json).map_err(|_| "the FCM service account is not JSON".to_owned())?;
        let field =
            |k: &str| sa[k].as_str().map(str::to_owned).ok_or_else(|| format!("the FCM service account has no {k}"));
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(field("private_key")?.as_bytes())
            .map_err(|_| "the FCM service account's private_key is not an RSA key".to_owned())?;
        Ok(Self {
            base_url,
            project_id,
            client_email: field("client_email")?,
            token_uri: token_uri.map_or_else(|| field("token_uri"), Ok)?,
            key,
            http,
            cached: std::sync::Mutex::new(None),
        })
    }

    async fn access_token(&self) -> Result<String, Outcome> {
        if let Some((token, until)) = self.cached.lock().expect("lock").clone()
            && std::time::Instant::now() < until
        {
            return Ok(token);
        }
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let claims =
            json!({"iss": self.client_email, "scope": FCM_SCOPE, "aud": self.token_uri, "iat": now, "exp": now + 3600});
        let assertion =
            jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &self.key)
                .map_err(|_| Outcome::Permanent { reason: "fcm: the service account key cannot sign".into() })?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let response = self
            .http
            .post(&self.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|_| Outcome::Transient { reason: "fcm token endpoint unreachable".into(), retry_after: None })?;
        if !response.status().is_success() {
            return Err(Outcome::Transient {
                reason: format!("fcm token endpoint answered {}", response.status().as_u16()),
                retry_after: None,
            });
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let token = body["access_token"]
            .as_str()
            .ok_or(Outcome::Transient { reason: "fcm token endpoint gave no token".into(), retry_after: None })?
            .to_owned();
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600).saturating_sub(60));
        *self.cached.lock().expect("lock") = Some((token.clone(), std::time::Instant::now() + lifetime));
        Ok(token)
    }
}

impl Provider for Fcm {
    fn name(&self) -> &'static str {
        "fcm"
    }
    fn channel(&self) -> Channel {
        Channel::Push
    }
    fn platform(&self) -> Option<vcare_domain::notification::PushPlatform> {
        Some(vcare_domain::notification::PushPlatform::Fcm)
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let token = match self.access_token().await {
                Ok(t) => t,
                Err(outcome) => return outcome,
            };
            let body = json!({"message": {
                "token": m.to,
                "notification": {"title": m.subject.unwrap_or("vcare"), "body": m.body},
                "data": {"reference": m.reference},
                "android": {"priority": "high"},
            }});
            let url = format!("{}/v1/projects/{}/messages:send", self.base_url.trim_end_matches('/'), self.project_id);
            let sent = self.http.post(url).bearer_auth(token).json(&body).send().await;
            let response = match sent {
                Ok(r) => r,
                Err(_) => return Outcome::Transient { reason: "fcm unreachable".into(), retry_after: None },
            };
            let status = response.status();
            let retry = retry_after(response.headers());
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let code = body["error"]["details"]
                .as_array()
                .and_then(|d| d.iter().find_map(|x| x["errorCode"].as_str()))
                .or_else(|| body["error"]["status"].as_str())
                .unwrap_or_default()
                .to_owned();
            match status.as_u16() {
                200..=299 => match body["name"].as_str() {
                    Some(name) => Outcome::Sent { provider_message_id: name.to_owned() },
                    None => Outcome::Transient { reason: "fcm answered without a name".into(), retry_after: None },
                },
                401 => {
                    *self.cached.lock().expect("lock") = None;
                    Outcome::Transient { reason: "fcm: access token refused".into(), retry_after: None }
                }
                404 => {
                    Outcome::DeadToken { reason: format!("fcm: {}", if code.is_empty() { "NOT_FOUND" } else { &code }) }
                }
                400 if code == "INVALID_ARGUMENT" || code == "UNREGISTERED" => {
                    Outcome::DeadToken { reason: format!("fcm: {code}") }
                }
                429 | 500..=599 => {
                    Outcome::Transient { reason: format!("fcm answered {}", status.as_u16()), retry_after: retry }
                }
                other => Outcome::Permanent { reason: format!("fcm refused: {other} {code}") },
            }
        })
    }
}

/// SendGrid v3 `POST {base}/v3/mail/send` (Bearer API key, JSON
/// personalizations) → 202 with `X-Message-Id`.
pub struct SendGrid {
    pub base_url: String,
    pub api_key: String,
    pub from: String,
    pub http: reqwest::Client,
}

impl Provider for SendGrid {
    fn name(&self) -> &'static str {
        "sendgrid"
    }
    fn channel(&self) -> Channel {
        Channel::Email
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let body = json!({
                "personalizations": [{"to": [{"email": m.to}], "custom_args": {"vcare_reference": m.reference}}],
                "from": {"email": self.from},
                "subject": m.subject.unwrap_or("vcare"),
                "content": [{"type": "text/plain", "value": m.body}],
            });
            let sent = self
                .http
                .post(format!("{}/v3/mail/send", self.base_url.trim_end_matches('/')))
                .bearer_auth(&self.api_key)
                .json(&body)
                .send()
                .await;
            classify(
                sent,
                "sendgrid",
                |h, _| h.get("x-message-id").and_then(|v| v.to_str().ok()).map(str::to_owned),
                |_, _| true,
            )
            .await
        })
    }
}

/// Amazon SES v2 `SendEmail` (simple content) through the SDK.
pub struct Ses {
    pub client: aws_sdk_sesv2::Client,
    pub from: String,
}

impl Provider for Ses {
    fn name(&self) -> &'static str {
        "ses"
    }
    fn channel(&self) -> Channel {
        Channel::Email
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, Outcome> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        Box::pin(async move {
            let content = |text: &str| Content::builder().data(text).charset("UTF-8").build();
            let (Ok(subject), Ok(body)) = (content(m.subject.unwrap_or("vcare")), content(m.body)) else {
                return Outcome::Permanent { reason: "ses: message could not be built".into() };
            };
            let message = Message::builder().subject(subject).body(Body::builder().text(body).build()).build();
            let sent = self
                .client
                .send_email()
                .from_email_address(&self.from)
                .destination(Destination::builder().to_addresses(m.to).build())
                .content(EmailContent::builder().simple(message).build())
                .send()
                .await;
            match sent {
                Ok(out) => match out.message_id {
                    Some(id) => Outcome::Sent { provider_message_id: id },
                    None => {
                        Outcome::Transient { reason: "ses answered without a message id".into(), retry_after: None }
                    }
                },
                Err(e) => {
                    let service = e.as_service_error();
                    let permanent = service.is_some_and(|s| {
                        s.is_message_rejected()
                            || s.is_mail_from_domain_not_verified_exception()
                            || s.is_bad_request_exception()
                    });
                    let code = service
                        .and_then(|s| aws_sdk_sesv2::error::ProvideErrorMetadata::code(s))
                        .unwrap_or("error")
                        .to_owned();
                    if permanent {
                        Outcome::Permanent { reason: format!("ses refused: {code}") }
                    } else {
                        Outcome::Transient { reason: format!("ses: {code}"), retry_after: None }
                    }
                }
            }
        })
    }
}

/// Every adapter vcare has, by channel.
pub const ADAPTERS: &[(Channel, &str)] = &[
    (Channel::Sms, "gateway"),
    (Channel::Sms, "twilio"),
    (Channel::Sms, "vonage"),
    (Channel::Email, "ses"),
    (Channel::Email, "sendgrid"),
    (Channel::Push, "fcm"),
    (Channel::Push, "webpush"),
    (Channel::Push, "apns"),
];

/// Whether an adapter's settings are present in `env` (the dispatch
/// function's environment); secrets are checked for presence, not opened.
pub fn configured(env: &vcare_runtime::Env, name: &str) -> bool {
    match name {
        "gateway" => env.get("SMS_GATEWAY_URL").is_some() && env.get("SMS_GATEWAY_API_KEY_CIPHERTEXT").is_some(),
        "twilio" => {
            env.get("TWILIO_ACCOUNT_SID").is_some()
                && env.get("TWILIO_FROM").is_some()
                && env.get("TWILIO_AUTH_TOKEN_CIPHERTEXT").is_some()
        }
        "vonage" => {
            env.get("VONAGE_API_KEY").is_some()
                && env.get("VONAGE_FROM").is_some()
                && env.get("VONAGE_API_SECRET_CIPHERTEXT").is_some()
        }
        "fcm" => env.get("FCM_PROJECT_ID").is_some() && env.get("FCM_SERVICE_ACCOUNT_CIPHERTEXT").is_some(),
        "webpush" => env.get("VAPID_SUBJECT").is_some() && env.get("VAPID_PRIVATE_KEY_CIPHERTEXT").is_some(),
        "apns" => {
            env.get("APNS_TEAM_ID").is_some()
                && env.get("APNS_KEY_ID").is_some()
                && env.get("APNS_TOPIC").is_some()
                && env.get("APNS_PRIVATE_KEY_CIPHERTEXT").is_some()
        }
        "ses" => env.get("EMAIL_FROM").is_some(),
        "sendgrid" => env.get("EMAIL_FROM").is_some() && env.get("SENDGRID_API_KEY_CIPHERTEXT").is_some(),
        _ => false,
    }
}

/// The failover order of a channel's providers (`SMS_PROVIDERS`,
/// `EMAIL_PROVIDERS`).
pub fn order(env: &vcare_runtime::Env, channel: Channel) -> Vec<String> {
    let (name, default) = match channel {
        Channel::Sms => ("SMS_PROVIDERS", "gateway,twilio,vonage"),
        Channel::Email => ("EMAIL_PROVIDERS", "ses,sendgrid"),
        Channel::Push => ("PUSH_PROVIDERS", "fcm,webpush,apns"),
    };
    env.get(name).unwrap_or(default).split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

/// Each adapter with its channel and state: `active` (configured and in the
/// channel's order, with its position), `configured` (not in the order),
/// `disabled`.
pub fn catalogue(env: &vcare_runtime::Env) -> Vec<Value> {
    ADAPTERS
        .iter()
        .map(|(channel, name)| {
            let position = order(env, *channel).iter().position(|n| n == name);
            let state = match (configured(env, name), position) {
                (true, Some(_)) => "active",
                (true, None) => "configured",
                (false, _) => "disabled",
            };
            json!({"name": name, "channel": channel.as_str(), "state": state, "failoverPosition": position.map(|p| p + 1)})
        })
        .collect()
}

/// Apple Push Notification service, token-based: `POST {base}/3/device/{token}`
/// over HTTP/2 with a provider JWT (ES256, `kid` = key id, `iss` = team id,
/// `iat`), reused for 50 minutes as Apple asks. `apns-topic` = the app's
/// bundle id. 410 `Unregistered` and 400 `BadDeviceToken` are dead tokens;
/// 403 `ExpiredProviderToken`/`InvalidProviderToken` renew the JWT (transient);
/// 429 and 5xx are transient.
pub struct Apns {
    pub base_url: String,
    pub topic: String,
    pub team_id: String,
    pub key_id: String,
    key: jsonwebtoken::EncodingKey,
    pub http: reqwest::Client,
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

    fn provider_token(&self) -> Result<String, Outcome> {
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
            .map_err(|_| Outcome::Permanent { reason: "apns: the key cannot sign".into() })?;
        *self.cached.lock().expect("lock") =
            Some((token.clone(), std::time::Instant::now() + Duration::from_secs(50 * 60)));
        Ok(token)
    }
}

impl Provider for Apns {
    fn name(&self) -> &'static str {
        "apns"
    }
    fn channel(&self) -> Channel {
        Channel::Push
    }
    fn platform(&self) -> Option<vcare_domain::notification::PushPlatform> {
        Some(vcare_domain::notification::PushPlatform::Apns)
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let token = match self.provider_token() {
                Ok(t) => t,
                Err(outcome) => return outcome,
            };
            if m.to.is_empty() || !m.to.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Outcome::DeadToken { reason: "apns: not a device token".into() };
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
                Err(_) => return Outcome::Transient { reason: "apns unreachable".into(), retry_after: None },
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
                (200, _) => Outcome::Sent { provider_message_id: id.unwrap_or_else(|| m.reference.to_owned()) },
                (410, _) | (400, "BadDeviceToken") | (400, "DeviceTokenNotForTopic") => {
                    Outcome::DeadToken { reason: format!("apns: {status} {reason}") }
                }
                (403, "ExpiredProviderToken" | "InvalidProviderToken") => {
                    *self.cached.lock().expect("lock") = None;
                    Outcome::Transient { reason: format!("apns: {reason}"), retry_after: None }
                }
                (429, _) | (500..=599, _) => {
                    Outcome::Transient { reason: format!("apns answered {status}"), retry_after: retry }
                }
                _ => Outcome::Permanent { reason: format!("apns refused: {status} {reason}") },
            }
        })
    }
}

/// A per-container token bucket for one provider: `per_second` sends, with
/// bursts up to one second's worth. Lambda runs many containers; their
/// number is bounded by the function's reserved concurrency, so the
/// provider sees at most that many times this rate.
pub struct RateLimiter {
    per_second: f64,
    state: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> Self {
        Self {
            per_second: per_second.max(0.001),
            state: std::sync::Mutex::new((per_second.max(1.0), std::time::Instant::now())),
        }
    }

    /// Takes a send slot: how long the caller must wait before it may send
    /// (zero when a slot is free now). The slot is reserved either way.
    pub fn acquire(&self) -> Duration {
        self.acquire_at(std::time::Instant::now())
    }

    pub fn acquire_at(&self, now: std::time::Instant) -> Duration {
        let mut state = self.state.lock().expect("lock");
        let (tokens, last) = *state;
        let refilled = (tokens + now.saturating_duration_since(last).as_secs_f64() * self.per_second)
            .min(self.per_second.max(1.0));
        let after = refilled - 1.0;
        *state = (after, now);
        if after >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-after / self.per_second) }
    }
}

/// `PROVIDER_RATE_LIMITS`, e.g. `gateway=20,twilio=10` (sends per second per
/// container); providers not named are not limited here (their 429s still are).
pub fn rate_limits(
    env: &vcare_runtime::Env,
) -> Result<std::collections::HashMap<String, RateLimiter>, vcare_runtime::ConfigError> {
    let mut out = std::collections::HashMap::new();
    for pair in env.get("PROVIDER_RATE_LIMITS").unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty())
    {
        let bad = || vcare_runtime::ConfigError::Invalid {
            name: "PROVIDER_RATE_LIMITS".into(),
            reason: "name=per-second pairs, like gateway=20".into(),
        };
        let (name, rate) = pair.split_once('=').ok_or_else(bad)?;
        let rate: f64 = rate.trim().parse().map_err(|_| bad())?;
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(bad());
        }
        out.insert(name.trim().to_owned(), RateLimiter::new(rate));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_paces() {
        let limiter = RateLimiter::new(2.0);
        let t0 = std::time::Instant::now();
        assert_eq!(limiter.acquire_at(t0), Duration::ZERO);
        assert_eq!(limiter.acquire_at(t0), Duration::ZERO, "a burst of one second's worth");
        assert_eq!(limiter.acquire_at(t0), Duration::from_millis(500), "then one slot every 1/2 s");
        assert_eq!(limiter.acquire_at(t0), Duration::from_millis(1000));
        // Two seconds later the debt is paid and one slot is free again.
        assert_eq!(limiter.acquire_at(t0 + Duration::from_secs(2)), Duration::ZERO);
    }

    #[test]
    fn limits_parse_or_fail_clearly() {
        let env = |v: &str| vcare_runtime::Env::from_map([("PROVIDER_RATE_LIMITS".to_owned(), v.to_owned())].into());
        let limits = rate_limits(&env("gateway=20, twilio=1.5")).unwrap();
        assert_eq!(limits.len(), 2);
        for bad in ["gateway", "gateway=fast", "gateway=0", "gateway=-1"] {
            assert!(rate_limits(&env(bad)).is_err(), "{bad}");
        }
    }
}
