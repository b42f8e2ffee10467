//! Vonage (Nexmo) SMS API.

use crate::catalogue::{Account, Settings};
use crate::prelude::*;

/// Vonage SMS API: `POST {base}/sms/json`, JSON `{api_key, api_secret, to,
/// from, text, client-ref, callback}` (`to` without the `+`). Vonage answers
/// 200 even for refusals: each message carries a `status` — "0" sent; 1
/// (throttled), 5 (internal error) and 9 (quota) transient; anything else
/// (invalid number, barred, unroutable, ...) permanent.
pub struct Vonage {
    account: Account,
}

impl Vonage {
    /// Built from its settings ([`ProviderId::settings`]).
    pub(crate) fn build(s: &Settings<'_>) -> Self {
        Self {
            account: s.account(
                ("VONAGE_BASE_URL", "https://rest.nexmo.com"),
                "VONAGE_API_KEY",
                "VONAGE_API_SECRET",
                ("VONAGE_FROM", ""),
            ),
        }
    }
}

impl Provider for Vonage {
    fn sends_receipts(&self) -> bool {
        self.account.receipt_url.is_some()
    }
    fn id(&self) -> ProviderId {
        ProviderId::Vonage
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, SendOutcome> {
        Box::pin(async move {
            let mut body = json!({
                "api_key": self.account.user, "api_secret": self.account.secret.expose(), "to": m.to.trim_start_matches('+'),
                "from": self.account.from, "text": m.body, "type": "unicode", "client-ref": m.reference,
            });
            if let Some(cb) = callback(&self.account.receipt_url, m) {
                body["callback"] = json!(cb);
            }
            let sent = self
                .account
                .http
                .post(format!("{}/sms/json", self.account.base_url.trim_end_matches('/')))
                .json(&body)
                .send()
                .await;
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
                |_, _| Verdict::Provider,
            )
            .await;
            match refusal {
                Some((code, true)) => {
                    SendOutcome::Transient { reason: format!("vonage status {code}"), retry_after: None }
                }
                // Vonage's SMS API: 7 number barred, 33 number de-activated.
                Some((code, false)) if matches!(code.as_str(), "7" | "33") => SendOutcome::Refused {
                    reason: format!("vonage refused the recipient: status {code}"),
                    suppress: false,
                },
                Some((code, false)) => SendOutcome::Permanent { reason: format!("vonage refused: status {code}") },
                None => outcome,
            }
        })
    }
}
