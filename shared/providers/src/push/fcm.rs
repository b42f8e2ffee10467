//! Firebase Cloud Messaging HTTP v1.

use crate::catalogue::Settings;
use crate::prelude::*;

/// Firebase Cloud Messaging HTTP v1: `POST {base}/v1/projects/{project}/messages:send`
/// with an OAuth2 access token. The token comes from the service account:
/// an RS256 JWT (`iss` = client e-mail, `scope` = firebase.messaging, `aud` =
/// token URI) exchanged at the token URI (`jwt-bearer` grant), cached until a
/// minute before it expires. `UNREGISTERED` / 404 and `INVALID_ARGUMENT` on
/// the token are dead tokens; 401 drops the cached token; 429 and 5xx are
/// transient.
pub struct Fcm {
    pub(crate) base_url: String,
    pub(crate) project_id: String,
    pub(crate) client_email: String,
    pub(crate) token_uri: String,
    key: jsonwebtoken::EncodingKey,
    pub(crate) http: reqwest::Client,
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

    async fn access_token(&self) -> Result<String, SendOutcome> {
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
                .map_err(|_| SendOutcome::Permanent { reason: "fcm: the service account key cannot sign".into() })?;
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
            .map_err(|_| SendOutcome::Transient {
                reason: "fcm token endpoint unreachable".into(),
                retry_after: None,
            })?;
        if !response.status().is_success() {
            return Err(SendOutcome::Transient {
                reason: format!("fcm token endpoint answered {}", response.status().as_u16()),
                retry_after: None,
            });
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let token = body["access_token"]
            .as_str()
            .ok_or(SendOutcome::Transient { reason: "fcm token endpoint gave no token".into(), retry_after: None })?
            .to_owned();
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600).saturating_sub(60));
        *self.cached.lock().expect("lock") = Some((token.clone(), std::time::Instant::now() + lifetime));
        Ok(token)
    }
}

impl Fcm {
    /// Built from its settings ([`ProviderId::settings`]).
    pub(crate) fn build(s: &Settings<'_>) -> Result<Self, String> {
        Self::from_service_account(
            s.secret("FCM_SERVICE_ACCOUNT").expose(),
            s.get("FCM_PROJECT_ID").to_owned(),
            s.or("FCM_BASE_URL", "https://fcm.googleapis.com"),
            s.values_opt("FCM_TOKEN_URL"),
            s.http.clone(),
        )
    }
}

impl Provider for Fcm {
    fn id(&self) -> ProviderId {
        ProviderId::Fcm
    }
    fn platform(&self) -> Option<vcare_domain::notification::PushPlatform> {
        Some(vcare_domain::notification::PushPlatform::Fcm)
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, SendOutcome> {
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
                Err(_) => return SendOutcome::Transient { reason: "fcm unreachable".into(), retry_after: None },
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
                    Some(name) => SendOutcome::Sent { provider_message_id: name.to_owned() },
                    None => SendOutcome::Transient { reason: "fcm answered without a name".into(), retry_after: None },
                },
                401 => {
                    *self.cached.lock().expect("lock") = None;
                    SendOutcome::Transient { reason: "fcm: access token refused".into(), retry_after: None }
                }
                404 => SendOutcome::DeadToken {
                    reason: format!("fcm: {}", if code.is_empty() { "NOT_FOUND" } else { &code }),
                },
                400 if code == "INVALID_ARGUMENT" || code == "UNREGISTERED" => {
                    SendOutcome::DeadToken { reason: format!("fcm: {code}") }
                }
                429 | 500..=599 => {
                    SendOutcome::Transient { reason: format!("fcm answered {}", status.as_u16()), retry_after: retry }
                }
                other => SendOutcome::Permanent { reason: format!("fcm refused: {other} {code}") },
            }
        })
    }
}
