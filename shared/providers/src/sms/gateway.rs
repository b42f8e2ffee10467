//! The in-country SMS gateway.

use crate::catalogue::{Account, Settings};
use crate::prelude::*;

/// The in-country SMS gateway (API.md): `POST {base}/v1/messages`, Bearer
/// API key, JSON `{to, from, text, reference, callbackUrl}` → `{messageId}`.
/// 4xx other than 429 are permanent.
pub struct GatewaySms {
    account: Account,
}

impl GatewaySms {
    /// Built from its settings ([`ProviderId::settings`]).
    pub(crate) fn build(s: &Settings<'_>) -> Self {
        Self { account: s.account(("SMS_GATEWAY_URL", ""), "", "SMS_GATEWAY_API_KEY", ("SMS_GATEWAY_FROM", "vcare")) }
    }
}

impl Provider for GatewaySms {
    fn sends_receipts(&self) -> bool {
        self.account.receipt_url.is_some()
    }
    fn id(&self) -> ProviderId {
        ProviderId::Gateway
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, SendOutcome> {
        Box::pin(async move {
            let mut body = json!({"to": m.to, "from": self.account.from, "text": m.body, "reference": m.reference});
            if let Some(cb) = callback(&self.account.receipt_url, m) {
                body["callbackUrl"] = json!(cb);
            }
            let sent = self
                .account
                .http
                .post(format!("{}/v1/messages", self.account.base_url.trim_end_matches('/')))
                .bearer_auth(self.account.secret.expose())
                .json(&body)
                .send()
                .await;
            // API.md: a 4xx `{"error": "recipient_*"}` concerns the recipient.
            let judge = |_, b: &Value| match b["error"].as_str() {
                Some(e) if e.starts_with("recipient_") => Verdict::Recipient { suppress: false },
                _ => Verdict::Provider,
            };
            classify(sent, "gateway", |_, b| b["messageId"].as_str().map(str::to_owned), judge).await
        })
    }
}
