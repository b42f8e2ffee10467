//! The in-country SMS gateway.

use crate::catalogue::Settings;
use crate::prelude::*;

/// The in-country SMS gateway (API.md): `POST {base}/v1/messages`, Bearer
/// API key, JSON `{to, from, text, reference, callbackUrl}` → `{messageId}`.
/// 4xx other than 429 are permanent.
pub struct GatewaySms {
    pub(crate) base_url: String,
    pub(crate) api_key: Secret,
    pub(crate) from: String,
    /// Where the gateway posts receipts; `ref` is added per message.
    pub(crate) callback_url: Option<String>,
    pub(crate) http: reqwest::Client,
}

impl GatewaySms {
    /// Built from its settings ([`ProviderId::settings`]).
    pub(crate) fn build(s: &Settings<'_>) -> Self {
        Self {
            base_url: s.get("SMS_GATEWAY_URL").to_owned(),
            api_key: s.secret("SMS_GATEWAY_API_KEY"),
            from: s.or("SMS_GATEWAY_FROM", "vcare"),
            callback_url: s.receipt_url(),
            http: s.http.clone(),
        }
    }
}

impl Provider for GatewaySms {
    fn sends_receipts(&self) -> bool {
        self.callback_url.is_some()
    }
    fn id(&self) -> ProviderId {
        ProviderId::Gateway
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, SendOutcome> {
        Box::pin(async move {
            let mut body = json!({"to": m.to, "from": self.from, "text": m.body, "reference": m.reference});
            if let Some(cb) = callback(&self.callback_url, m) {
                body["callbackUrl"] = json!(cb);
            }
            let sent = self
                .http
                .post(format!("{}/v1/messages", self.base_url.trim_end_matches('/')))
                .bearer_auth(self.api_key.expose())
                .json(&body)
                .send()
                .await;
            classify(sent, "gateway", |_, b| b["messageId"].as_str().map(str::to_owned), |_, _| true).await
        })
    }
}
