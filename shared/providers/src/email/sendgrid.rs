//! SendGrid v3 Mail Send.

use crate::catalogue::{Account, Settings};
use crate::prelude::*;

/// SendGrid v3 `POST {base}/v3/mail/send` (Bearer API key, JSON
/// personalizations) → 202 with `X-Message-Id`.
pub struct SendGrid {
    account: Account,
}

impl SendGrid {
    /// Built from its settings ([`ProviderId::settings`]).
    pub(crate) fn build(s: &Settings<'_>) -> Self {
        Self {
            account: s.account(
                ("SENDGRID_BASE_URL", "https://api.sendgrid.com"),
                "",
                "SENDGRID_API_KEY",
                ("EMAIL_FROM", ""),
            ),
        }
    }
}

impl Provider for SendGrid {
    fn id(&self) -> ProviderId {
        ProviderId::SendGrid
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, SendOutcome> {
        Box::pin(async move {
            let mut content = vec![json!({"type": "text/plain", "value": m.body})];
            content.extend(m.html.map(|h| json!({"type": "text/html", "value": h})));
            let body = json!({
                "personalizations": [{"to": [{"email": m.to}], "custom_args": {"vcare_reference": m.reference}}],
                "from": {"email": self.account.from},
                "subject": m.subject.unwrap_or("vcare"),
                "content": content,
            });
            let sent = self
                .account
                .http
                .post(format!("{}/v3/mail/send", self.account.base_url.trim_end_matches('/')))
                .bearer_auth(self.account.secret.expose())
                .json(&body)
                .send()
                .await;
            classify(
                sent,
                "sendgrid",
                |h, _| h.get("x-message-id").and_then(|v| v.to_str().ok()).map(str::to_owned),
                |_, _| Verdict::Provider,
            )
            .await
        })
    }
}
