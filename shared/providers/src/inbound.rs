//! Inbound SMS as each provider posts it: Twilio's incoming-message
//! webhook (form, `X-Twilio-Signature` like its receipts), Vonage's inbound
//! SMS (form or JSON, signed like its receipts), and the in-country
//! gateway's JSON, signed with `X-Timestamp` and `X-Signature` = hex
//! HMAC-SHA-256 over `<timestamp>.<raw body>`. Read into one shape; nothing
//! here trusts a message whose signature did not check.

use aws_lc_rs::hmac;
use vcare_domain::consent::InboundSms;
use vcare_domain::digest::hex;
use vcare_domain::notification::is_e164;

use crate::receipts::{Params, within_skew};

/// The longest text vcare reads (Twilio's limit for one message).
pub const MAX_INBOUND_CHARS: usize = 1600;

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A number as E.164: Vonage leaves out the `+`.
fn number(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let n = if raw.starts_with('+') { raw.to_owned() } else { format!("+{raw}") };
    is_e164(&n).then_some(n)
}

fn message(id: Option<&str>, from: Option<&str>, to: Option<&str>, text: Option<&str>) -> Option<InboundSms> {
    let id = id.map(str::trim).filter(|i| !i.is_empty() && i.len() <= 128)?;
    let text = text.unwrap_or_default();
    if text.chars().count() > MAX_INBOUND_CHARS {
        return None;
    }
    Some(InboundSms { message_id: id.to_owned(), from: number(from?)?, to: to.and_then(number), text: text.to_owned() })
}

/// Twilio: `MessageSid`, `From`, `To`, `Body`.
pub fn twilio_inbound(params: &Params) -> Option<InboundSms> {
    message(param(params, "MessageSid"), param(params, "From"), param(params, "To"), param(params, "Body"))
}

/// Vonage: `messageId`, `msisdn`, `to`, `text`.
pub fn vonage_inbound(params: &Params) -> Option<InboundSms> {
    message(param(params, "messageId"), param(params, "msisdn"), param(params, "to"), param(params, "text"))
}

/// The gateway: `{"messageId", "from", "to", "text", "receivedAt"}`.
pub fn gateway_inbound(body: &serde_json::Value) -> Option<InboundSms> {
    let field = |name: &str| body.get(name).and_then(|v| v.as_str());
    message(field("messageId"), field("from"), field("to"), field("text"))
}

/// The gateway's `X-Signature` for a body sent at `timestamp`.
pub fn gateway_inbound_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    hex(ctx.sign().as_ref())
}

/// Whether the gateway signed `body` (constant time) at a `timestamp`
/// (unix seconds) within `max_skew_secs` of `now`.
pub fn gateway_inbound_valid(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    max_skew_secs: i64,
) -> bool {
    let (Some(ts), Some(sig)) = (timestamp.map(str::trim), signature.map(str::trim)) else { return false };
    let Ok(at) = ts.parse::<i64>() else { return false };
    let expected = gateway_inbound_signature(secret, ts, body);
    let given = sig.to_ascii_lowercase();
    within_skew(now, at, max_skew_secs)
        && given.len() == expected.len()
        && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn each_providers_message_reads_into_one_shape() {
        let t = twilio_inbound(&params(&[
            ("MessageSid", "SM1"),
            ("From", "+93701234567"),
            ("To", "+15005550006"),
            ("Body", "STOP"),
        ]))
        .unwrap();
        assert_eq!((t.message_id.as_str(), t.from.as_str(), t.text.as_str()), ("SM1", "+93701234567", "STOP"));
        let v =
            vonage_inbound(&params(&[("messageId", "v1"), ("msisdn", "93701234567"), ("to", "4915"), ("text", "C")]))
                .unwrap();
        assert_eq!(v.from, "+93701234567");
        let body = serde_json::json!({"messageId": "g1", "from": "+93701234567", "to": "+93700000001", "text": "help"});
        assert_eq!(gateway_inbound(&body).unwrap().to.as_deref(), Some("+93700000001"));
        // No id, no sender, a sender that is not a number, an overlong text: nothing.
        assert!(twilio_inbound(&params(&[("From", "+93701234567"), ("Body", "x")])).is_none());
        assert!(twilio_inbound(&params(&[("MessageSid", "SM1"), ("Body", "x")])).is_none());
        assert!(vonage_inbound(&params(&[("messageId", "v"), ("msisdn", "abc"), ("text", "x")])).is_none());
        let long = "x".repeat(MAX_INBOUND_CHARS + 1);
        assert!(twilio_inbound(&params(&[("MessageSid", "S"), ("From", "+93701234567"), ("Body", &long)])).is_none());
    }

    #[test]
    fn the_gateways_signature_covers_the_timestamp_and_the_raw_body() {
        let body = br#"{"messageId":"g1"}"#;
        let sig = gateway_inbound_signature("s3cret", "1796000000", body);
        assert!(gateway_inbound_valid("s3cret", Some("1796000000"), Some(&sig), body, 1796000100, 300));
        assert!(gateway_inbound_valid("s3cret", Some("1796000000"), Some(&sig.to_uppercase()), body, 1796000000, 300));
        assert!(!gateway_inbound_valid("s3cret", Some("1796000000"), Some(&sig), body, 1796000400, 300), "old");
        assert!(!gateway_inbound_valid("s3cret", Some("1796000001"), Some(&sig), body, 1796000000, 300), "moved");
        assert!(!gateway_inbound_valid("other", Some("1796000000"), Some(&sig), body, 1796000000, 300));
        assert!(!gateway_inbound_valid("s3cret", Some("1796000000"), Some(&sig), b"{}", 1796000000, 300));
        assert!(!gateway_inbound_valid("s3cret", None, Some(&sig), body, 1796000000, 300));
        // Any integer is a time too far off, never an overflow.
        for extreme in [i64::MIN, i64::MAX] {
            let ts = extreme.to_string();
            let sig = gateway_inbound_signature("s3cret", &ts, body);
            for now in [i64::MIN, 0, 1796000000, i64::MAX] {
                let same = now == extreme;
                assert_eq!(
                    gateway_inbound_valid("s3cret", Some(&ts), Some(&sig), body, now, 300),
                    same,
                    "{ts} at {now}"
                );
            }
        }
    }
}
