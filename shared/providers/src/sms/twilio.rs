//! Twilio Programmable Messaging.

use crate::catalogue::Settings;
use crate::prelude::*;

/// Twilio Programmable Messaging: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`,
/// form-encoded `To`, `From`, `Body`, `StatusCallback`, HTTP basic auth
/// (account SID, auth token) → 201 `{sid}`. Twilio's error `code` tells
/// permanent refusals (21211 invalid To, 21610 unsubscribed, 21614 not a
/// mobile number, ...) from transient ones.
pub struct Twilio {
    pub(crate) base_url: String,
    pub(crate) account_sid: String,
    pub(crate) auth_token: Secret,
    pub(crate) from: String,
    pub(crate) status_callback: Option<String>,
    pub(crate) http: reqwest::Client,
}

impl Twilio {
    /// Built from its settings ([`ProviderId::settings`]).
    pub(crate) fn build(s: &Settings<'_>) -> Self {
        Self {
            base_url: s.or("TWILIO_BASE_URL", "https://api.twilio.com"),
            account_sid: s.get("TWILIO_ACCOUNT_SID").to_owned(),
            auth_token: s.secret("TWILIO_AUTH_TOKEN"),
            from: s.get("TWILIO_FROM").to_owned(),
            status_callback: s.receipt_url(),
            http: s.http.clone(),
        }
    }
}

impl Provider for Twilio {
    fn sends_receipts(&self) -> bool {
        self.status_callback.is_some()
    }
    fn id(&self) -> ProviderId {
        ProviderId::Twilio
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, SendOutcome> {
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
                .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
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
