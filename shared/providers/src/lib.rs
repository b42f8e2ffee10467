//! Provider adapters, one module each under `sms/`, `email/` and `push/`,
//! and one catalogue of them ([`ProviderId`]): its channel, its settings,
//! how it is built. Each speaks its provider's documented wire format and
//! classifies what happened ([`SendOutcome`]):
//! - `Sent`: accepted, with the provider's message id;
//! - `Transient`: may work later (timeouts, 429 with Retry-After, 5xx);
//! - `Permanent`: will not work with this provider for this recipient
//!   (invalid number or address, unregistered token): not retried.
//!
//! Nothing here logs the recipient or the text.

mod catalogue;
pub mod email;
pub mod inbound;
pub mod public_dns;
pub mod push;
mod rate;
pub mod receipts;
mod secret;
pub mod sms;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use vcare_domain::notification::Channel;
use vcare_runtime::BoxFuture;

/// One message for one provider. `reference` is vcare's attempt id: the
/// provider echoes it in delivery receipts. `callback_query` (already
/// URL-encoded, e.g. `ref=…&sig=…`) is added to the adapter's receipt URL.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub reference: &'a str,
    pub to: &'a str,
    pub subject: Option<&'a str>,
    pub body: &'a str,
    /// An e-mail's HTML part (its text part is `body`).
    pub html: Option<&'a str>,
    pub callback_query: Option<&'a str>,
}

/// An adapter's receipt URL for one message.
pub(crate) fn callback(base: &Option<String>, m: &Outgoing<'_>) -> Option<String> {
    let base = base.as_ref()?;
    Some(match m.callback_query {
        Some(q) => format!("{base}{}{q}", if base.contains('?') { '&' } else { '?' }),
        None => base.clone(),
    })
}

pub use catalogue::{ProviderId, Setting, Wiring, build, catalogue, configured, order, order_setting, routable};
pub use email::{SendGrid, Ses};
pub use push::{Apns, FCM_SCOPE, Fcm, WebPush, webpush_encrypt};
pub use rate::{RateLimiter, rate_limits};
pub use secret::{Secret, Secrets, secret_setting};
pub use sms::{GatewaySms, Twilio, Vonage};
pub use vcare_domain::lifecycle::SendOutcome;

/// What every adapter module uses.
mod prelude {
    pub(crate) use std::time::Duration;

    pub(crate) use reqwest::StatusCode;
    pub(crate) use serde_json::{Value, json};
    pub(crate) use vcare_runtime::BoxFuture;

    pub(crate) use crate::{Outgoing, Provider, ProviderId, SendOutcome, Verdict, callback, classify, retry_after};
}

pub trait Provider: Send + Sync {
    fn id(&self) -> ProviderId;
    fn name(&self) -> &'static str {
        self.id().name()
    }
    fn channel(&self) -> Channel {
        self.id().channel()
    }
    /// For push adapters: the token platform they send to.
    fn platform(&self) -> Option<vcare_domain::notification::PushPlatform> {
        None
    }
    fn send<'a>(&'a self, message: &'a Outgoing<'a>) -> BoxFuture<'a, SendOutcome>;
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

/// What a provider's 4xx (other than 429) means, as its own codes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Worth another try.
    Retry,
    /// This provider will not send it (our account, our request).
    Provider,
    /// The recipient cannot be reached on this channel (opted out, invalid
    /// or barred number): no other provider of the channel either.
    Recipient { suppress: bool },
}

/// The common HTTP classification: 2xx is the caller's to read; 429 and 5xx
/// are transient (with Retry-After); other 4xx as `judge` reads the body;
/// network failures and timeouts transient.
pub(crate) async fn classify(
    sent: Result<reqwest::Response, reqwest::Error>,
    provider: &str,
    read_id: impl FnOnce(&reqwest::header::HeaderMap, Value) -> Option<String>,
    judge: impl FnOnce(StatusCode, &Value) -> Verdict,
) -> SendOutcome {
    let response = match sent {
        Ok(r) => r,
        Err(e) => {
            let reason = if e.is_timeout() { "timed out" } else { "unreachable" };
            return SendOutcome::Transient { reason: format!("{provider} {reason}"), retry_after: None };
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return match read_id(&headers, body) {
            Some(id) if !id.is_empty() => SendOutcome::Sent { provider_message_id: id },
            _ => SendOutcome::Transient {
                reason: format!("{provider} answered {status} without a message id"),
                retry_after: None,
            },
        };
    }
    let verdict = match status {
        s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => Verdict::Retry,
        s => judge(s, &body),
    };
    match verdict {
        Verdict::Retry => SendOutcome::Transient {
            reason: format!("{provider} answered {}", status.as_u16()),
            retry_after: retry_after(&headers),
        },
        Verdict::Provider => SendOutcome::Permanent { reason: format!("{provider} refused: {}", status.as_u16()) },
        Verdict::Recipient { suppress } => {
            SendOutcome::Refused { reason: format!("{provider} refused the recipient: {}", status.as_u16()), suppress }
        }
    }
}
