//! Twilio Programmable Messaging.

use crate::catalogue::{Account, Settings};
use crate::prelude::*;

/// Twilio Programmable Messaging: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`,
/// form-encoded `To`, `From`, `Body`, `StatusCallback`, HTTP basic auth
/// (account SID, auth token) → 201 `{sid}`. Twilio's error `code` tells
/// permanent refusals (21211 invalid To, 21610 unsubscribed, 21614 not a
/// mobile number, ...) from transient ones.
/// Twilio error 21610: the recipient replied STOP to this sender.
pub const TWILIO_UNSUBSCRIBED: u64 = 21610;

/// Twilio errors about the recipient, not the request: 21211 invalid `To`,
/// 21614 not a mobile number, 21612 not reachable from this sender's
/// country (Twilio's error dictionary).
pub const TWILIO_RECIPIENT_CODES: &[u64] = &[21211, 21614, 21612];

pub struct Twilio {
    account: Account,
}

impl Twilio {
    /// Built from its settings ([`ProviderId::settings`]).
    pub(crate) fn build(s: &Settings<'_>) -> Self {
        Self {
            account: s.account(
                ("TWILIO_BASE_URL", "https://api.twilio.com"),
                "TWILIO_ACCOUNT_SID",
                "TWILIO_AUTH_TOKEN",
                ("TWILIO_FROM", ""),
            ),
        }
    }
}

impl Provider for Twilio {
    fn sends_receipts(&self) -> bool {
        self.account.receipt_url.is_some()
    }
    fn id(&self) -> ProviderId {
        ProviderId::Twilio
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, SendOutcome> {
        Box::pin(async move {
            let form = {
                let mut form = form_urlencoded::Serializer::new(String::new());
                form.append_pair("To", m.to).append_pair("From", &self.account.from).append_pair("Body", m.body);
                if let Some(cb) = callback(&self.account.receipt_url, m) {
                    form.append_pair("StatusCallback", &cb);
                }
                form.finish()
            };
            let url = format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                self.account.base_url.trim_end_matches('/'),
                self.account.user
            );
            let sent = self
                .account
                .http
                .post(url)
                .basic_auth(&self.account.user, Some(self.account.secret.expose()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await;
            classify(
                sent,
                "twilio",
                |_, b| b["sid"].as_str().map(str::to_owned),
                |status, b| match b["code"].as_u64() {
                    // The recipient unsubscribed (replied STOP): suppressed too.
                    Some(TWILIO_UNSUBSCRIBED) => Verdict::Recipient { suppress: true },
                    Some(code) if TWILIO_RECIPIENT_CODES.contains(&code) => Verdict::Recipient { suppress: false },
                    // Any other coded error, and 401/403/404 (our credentials or
                    // account), are this provider's.
                    Some(_) => Verdict::Provider,
                    None if status == StatusCode::BAD_REQUEST => Verdict::Retry,
                    None => Verdict::Provider,
                },
            )
            .await
        })
    }
}
