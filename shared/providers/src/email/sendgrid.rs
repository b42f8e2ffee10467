//! SendGrid v3 Mail Send.

use crate::catalogue::Settings;
use crate::prelude::*;

/// SendGrid v3 `POST {base}/v3/mail/send` (Bearer API key, JSON
/// personalizations) → 202 with `X-Message-Id`.
pub struct SendGrid {
    pub(crate) base_url: String,
    pub(crate) api_key: Secret,
    pub(crate) from: String,
    pub(crate) http: reqwest::Client,
}

impl SendGrid {
    /// Built from its settings ([`ProviderId::settings`]).
    pub(crate) fn build(s: &Settings<'_>) -> Self {
        Self {
            base_url: s.or("SENDGRID_BASE_URL", "https://api.sendgrid.com"),
            api_key: s.secret("SENDGRID_API_KEY"),
            from: s.get("EMAIL_FROM").to_owned(),
            http: s.http.clone(),
        }
    }
}

impl Provider for SendGrid {
    fn id(&self) -> ProviderId {
        ProviderId::SendGrid
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, SendOutcome> {
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
                .bearer_auth(self.api_key.expose())
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
