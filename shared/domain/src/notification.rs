//! Notifications (API.md "Communication"): what a valid request is, the
//! delivery status order, and how a recipient is shown masked.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Rejected;
use crate::clinic::QuietHours;
use crate::ids::is_valid_external_id;
use crate::receipt::Delivery;

pub const MAX_BODY_CHARS: usize = 4000;
pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_VARIABLES: usize = 50;
pub const MAX_VARIABLE_CHARS: usize = 1000;
pub const MAX_PUSH_TOKENS: usize = 10;
pub const MAX_PUSH_TOKEN_CHARS: usize = 4096;
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Push,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Push => "push",
            Self::Email => "email",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    #[default]
    Normal,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushPlatform {
    Fcm,
    Apns,
    Webpush,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushToken {
    pub platform: PushPlatform,
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recipient {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub push_tokens: Vec<PushToken>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Content {
    #[serde(default)]
    pub subject: Option<String>,
    pub body: String,
}

/// The body of `POST /v1/communication/notifications`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationRequest {
    pub recipient: Recipient,
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default)]
    pub send_at: Option<String>,
}

/// What to send: a named template with variables, or literal content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Message {
    Template { name: String, variables: BTreeMap<String, String> },
    Content(Content),
}

/// A request that passed every rule. Holds personal data: never log it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewNotification {
    pub recipient: Recipient,
    pub channels: Vec<Channel>,
    pub message: Message,
    pub priority: Priority,
    pub send_at: Option<DateTime<Utc>>,
}

/// E.164: `+`, a non-zero country digit, 7 to 15 digits in all.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else { return false };
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// A practical e-mail syntax check: one `@`, a non-empty local part of
/// printable characters, a domain of dot-separated labels with a dot.
pub fn is_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.rsplit_once('@') else { return false };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain.contains('.')
        && domain.split('.').all(label_ok)
}

/// BCP 47-ish: `fa`, `fa-AF`, `ps-AF`, `en-GB`.
fn is_locale(l: &str) -> bool {
    let mut parts = l.split('-');
    let lang = parts.next().unwrap_or_default();
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn chars_at_most(field: &str, value: &str, max: usize) -> Result<(), Rejected> {
    if value.chars().count() > max {
        return Err(Rejected::Invalid(format!("{field}: at most {max} characters")));
    }
    Ok(())
}

impl NotificationRequest {
    /// Checks every rule. `now` bounds `sendAt`; `timezone_ok` tells a known
    /// IANA time zone (the caller owns the zone database).
    /// `push` says which Web Push endpoints may be called.
    pub fn validate(
        self,
        now: DateTime<Utc>,
        timezone_ok: impl Fn(&str) -> bool,
        push: &crate::push::PushEndpoints,
    ) -> Result<NewNotification, Rejected> {
        use Rejected::{Impossible, Invalid};
        let r = &self.recipient;
        if let Some(u) = &r.user_id
            && !is_valid_external_id(u)
        {
            return Err(Invalid("recipient.userId: 1 to 128 of A-Z a-z 0-9 . _ : @ -".into()));
        }
        if r.phone.as_deref().is_some_and(|p| !is_e164(p)) {
            return Err(Invalid("recipient.phone: an E.164 number: + and 7 to 15 digits".into()));
        }
        if r.email.as_deref().is_some_and(|e| !is_email(e)) {
            return Err(Invalid("recipient.email: not an e-mail address".into()));
        }
        if r.push_tokens.len() > MAX_PUSH_TOKENS {
            return Err(Invalid(format!("recipient.pushTokens: at most {MAX_PUSH_TOKENS}")));
        }
        for (i, t) in r.push_tokens.iter().enumerate() {
            if t.token.is_empty() || t.token.len() > MAX_PUSH_TOKEN_CHARS || t.token.chars().any(char::is_control) {
                return Err(Invalid(format!(
                    "recipient.pushTokens[{i}].token: 1 to {MAX_PUSH_TOKEN_CHARS} characters"
                )));
            }
            if t.platform == PushPlatform::Webpush {
                let endpoint = crate::push::subscription_endpoint(&t.token).ok_or_else(|| {
                    Invalid(format!("recipient.pushTokens[{i}].token: a Web Push subscription with an endpoint"))
                })?;
                if let Err(why) = push.check(&endpoint) {
                    return Err(Invalid(format!("recipient.pushTokens[{i}].token: endpoint {why}")));
                }
            }
        }
        if r.locale.as_deref().is_some_and(|l| !is_locale(l)) {
            return Err(Invalid("recipient.locale: a language tag, like fa-AF".into()));
        }
        if r.timezone.as_deref().is_some_and(|z| !timezone_ok(z)) {
            return Err(Invalid("recipient.timezone: an IANA time zone, like Asia/Kabul".into()));
        }
        if self.channels.is_empty() {
            return Err(Invalid("channels: at least one of sms, push, email".into()));
        }
        for (i, c) in self.channels.iter().enumerate() {
            if self.channels[..i].contains(c) {
                return Err(Invalid(format!("channels: {} appears twice", c.as_str())));
            }
            let reachable = match c {
                Channel::Sms => r.phone.is_some(),
                Channel::Email => r.email.is_some(),
                Channel::Push => !r.push_tokens.is_empty(),
            };
            if !reachable {
                return Err(Impossible(format!(
                    "channels: {} needs the recipient's {}",
                    c.as_str(),
                    match c {
                        Channel::Sms => "phone",
                        Channel::Email => "email",
                        Channel::Push => "pushTokens",
                    }
                )));
            }
        }
        let message = match (self.template, self.content) {
            (Some(_), Some(_)) => return Err(Invalid("either template or content, not both".into())),
            (None, None) => return Err(Invalid("template or content is required".into())),
            (Some(name), None) => {
                if !is_valid_external_id(&name) {
                    return Err(Invalid("template: a template name".into()));
                }
                if self.variables.len() > MAX_VARIABLES {
                    return Err(Invalid(format!("variables: at most {MAX_VARIABLES}")));
                }
                for (k, v) in &self.variables {
                    if !is_valid_external_id(k) {
                        return Err(Invalid("variables: names are 1 to 128 of A-Z a-z 0-9 . _ : @ -".into()));
                    }
                    chars_at_most(&format!("variables.{k}"), v, MAX_VARIABLE_CHARS)?;
                }
                Message::Template { name, variables: self.variables }
            }
            (None, Some(content)) => {
                if !self.variables.is_empty() {
                    return Err(Invalid("variables go with template, not content".into()));
                }
                if content.body.trim().is_empty() {
                    return Err(Invalid("content.body: not empty".into()));
                }
                chars_at_most("content.body", &content.body, MAX_BODY_CHARS)?;
                if let Some(s) = &content.subject {
                    chars_at_most("content.subject", s, MAX_SUBJECT_CHARS)?;
                }
                Message::Content(content)
            }
        };
        let send_at = match self.send_at.as_deref() {
            None => None,
            Some(raw) => {
                let at = crate::room::parse_time("sendAt", raw)?;
                if at < now - chrono::Duration::seconds(60) {
                    return Err(Impossible("sendAt is in the past".into()));
                }
                if at > now + chrono::Duration::days(366) {
                    return Err(Impossible("sendAt is more than a year ahead".into()));
                }
                Some(at)
            }
        };
        Ok(NewNotification {
            recipient: self.recipient,
            channels: self.channels,
            message,
            priority: self.priority,
            send_at,
        })
    }
}

/// Delivery status. Ranks only move forward; terminal states stay, except
/// that a late `delivered` may replace `expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Expired,
}

impl Status {
    pub fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Sending => 1,
            Self::Sent => 2,
            Self::Delivered | Self::Undelivered | Self::Failed | Self::Expired => 3,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.rank() == 3
    }

    pub fn may_become(self, next: Self) -> bool {
        next.rank() > self.rank() || (self == Self::Expired && next == Self::Delivered)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }
}

/// A push token's fingerprint: what vcare remembers of a dead token.
pub fn token_hash(t: &PushToken) -> String {
    let platform =
        serde_json::to_value(t.platform).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    crate::digest::sha256_hex(format!("{platform}:{}", t.token).as_bytes())
}

/// `+93701234567` → `+93*******567`: enough to recognise, not to use.
pub fn mask_phone(phone: &str) -> String {
    let n = phone.chars().count();
    if n <= 6 {
        return "*".repeat(n);
    }
    phone.chars().enumerate().map(|(i, c)| if i < 3 || i >= n - 3 { c } else { '*' }).collect()
}

/// `zahra@example.org` → `z***@example.org`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}

/// The dispatch queue's message: ids only, never personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DispatchMessage {
    pub clinic_id: String,
    pub notification_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(v: serde_json::Value) -> Result<NewNotification, Rejected> {
        serde_json::from_value::<NotificationRequest>(v).expect("shape").validate(
            Utc::now(),
            |z| z == "Asia/Kabul",
            &Default::default(),
        )
    }

    fn body() -> serde_json::Value {
        json!({
            "recipient": {"userId": "u-pat", "phone": "+93701234567", "email": "z@example.org",
                          "pushTokens": [{"platform": "fcm", "token": "tok"}], "locale": "fa-AF", "timezone": "Asia/Kabul"},
            "channels": ["sms", "push", "email"], "template": "appointment-reminder", "variables": {"when": "10:00"},
        })
    }

    #[test]
    fn phone_and_email_syntax() {
        for ok in ["+93701234567", "+4915112345678", "+1234567"] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in ["93701234567", "+0701234567", "+93 70 123", "+1234567890123456", "+123456", "+93-701234567"] {
            assert!(!is_e164(bad), "{bad}");
        }
        for ok in ["z@example.org", "first.last+tag@sub.example.co.uk", "ü@exämple.org"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "z@",
            "@example.org",
            "z@example",
            "z@@example.org",
            "z @example.org",
            "z@-x.org",
            ".z@example.org",
            "a..b@example.org",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn every_rule_is_enforced() {
        assert!(request(body()).is_ok());
        type Change = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Change, bool)> = vec![
            ("bad phone", Box::new(|b| b["recipient"]["phone"] = json!("0701234567")), false),
            ("bad email", Box::new(|b| b["recipient"]["email"] = json!("nope")), false),
            ("no channels", Box::new(|b| b["channels"] = json!([])), false),
            ("twice", Box::new(|b| b["channels"] = json!(["sms", "sms"])), false),
            (
                "sms without phone",
                Box::new(|b| {
                    b["recipient"].as_object_mut().unwrap().remove("phone");
                }),
                true,
            ),
            ("both", Box::new(|b| b["content"] = json!({"body": "x"})), false),
            (
                "neither",
                Box::new(|b| {
                    b.as_object_mut().unwrap().remove("template");
                }),
                false,
            ),
            ("past", Box::new(|b| b["sendAt"] = json!("2020-01-01T00:00:00Z")), true),
            ("bad time", Box::new(|b| b["sendAt"] = json!("soon")), false),
            ("bad zone", Box::new(|b| b["recipient"]["timezone"] = json!("Mars/Olympus")), false),
            ("bad locale", Box::new(|b| b["recipient"]["locale"] = json!("farsi language")), false),
            ("long variable", Box::new(|b| b["variables"]["when"] = json!("x".repeat(1001))), false),
        ];
        for (what, change, impossible) in cases {
            let mut b = body();
            change(&mut b);
            match request(b) {
                Err(Rejected::Impossible(_)) => assert!(impossible, "{what}: expected 400"),
                Err(Rejected::Invalid(_)) => assert!(!impossible, "{what}: expected 422"),
                Ok(_) => panic!("{what}: accepted"),
            }
        }
    }

    #[test]
    fn statuses_only_move_forward() {
        use Status::*;
        assert!(Queued.may_become(Sent));
        assert!(Sent.may_become(Delivered));
        assert!(!Delivered.may_become(Sent));
        assert!(!Delivered.may_become(Failed));
        assert!(Expired.may_become(Delivered));
        assert!(!Sent.may_become(Sending));
    }

    fn attempt(channel: Channel, provider: &str, status: Status, permanent: bool) -> Attempt {
        Attempt {
            attempt_id: "a".into(),
            channel,
            provider: provider.into(),
            status,
            at: Utc::now(),
            error: None,
            provider_message_id: None,
            permanent,
        }
    }

    #[test]
    fn routes_fail_over_by_provider_then_channel() {
        let providers = [(Channel::Sms, "gateway"), (Channel::Sms, "twilio"), (Channel::Email, "ses")];
        let channels = [Channel::Sms, Channel::Email];
        assert_eq!(next_route(&channels, &[], &providers, 2), Some((Channel::Sms, "gateway")));
        let one = [attempt(Channel::Sms, "gateway", Status::Failed, false)];
        assert_eq!(
            next_route(&channels, &one, &providers, 2),
            Some((Channel::Sms, "gateway")),
            "one transient failure: retry"
        );
        let two = [
            attempt(Channel::Sms, "gateway", Status::Failed, false),
            attempt(Channel::Sms, "gateway", Status::Failed, false),
        ];
        assert_eq!(
            next_route(&channels, &two, &providers, 2),
            Some((Channel::Sms, "twilio")),
            "then the next provider"
        );
        let perm = [
            attempt(Channel::Sms, "gateway", Status::Failed, true),
            attempt(Channel::Sms, "twilio", Status::Failed, true),
        ];
        assert_eq!(next_route(&channels, &perm, &providers, 2), Some((Channel::Email, "ses")), "then the next channel");
        let all = [
            attempt(Channel::Sms, "gateway", Status::Failed, true),
            attempt(Channel::Sms, "twilio", Status::Failed, true),
            attempt(Channel::Email, "ses", Status::Failed, true),
        ];
        assert_eq!(next_route(&channels, &all, &providers, 2), None);
    }

    #[test]
    fn quiet_hours_in_the_recipients_zone() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // Kabul is UTC+4:30: 18:00Z is 22:30 there, quiet until 07:00 (02:30Z next day).
        assert_eq!(
            quiet_until(at("2026-11-23T18:00:00Z"), Some("Asia/Kabul"), Priority::Normal, QuietHours::default()),
            Some(at("2026-11-24T02:30:00Z"))
        );
        // 23:00Z is 03:30 there: until 07:00 the same local day.
        assert_eq!(
            quiet_until(at("2026-11-23T23:00:00Z"), Some("Asia/Kabul"), Priority::Normal, QuietHours::default()),
            Some(at("2026-11-24T02:30:00Z"))
        );
        assert_eq!(
            quiet_until(at("2026-11-23T06:00:00Z"), Some("Asia/Kabul"), Priority::Normal, QuietHours::default()),
            None,
            "10:30 local"
        );
        assert_eq!(
            quiet_until(at("2026-11-23T18:00:00Z"), Some("Asia/Kabul"), Priority::High, QuietHours::default()),
            None,
            "high goes now"
        );
        assert_eq!(
            quiet_until(at("2026-11-23T18:00:00Z"), None, Priority::Normal, QuietHours::default()),
            None,
            "no zone, no quiet hours"
        );
    }

    #[test]
    fn masks_keep_too_little_to_use() {
        assert_eq!(mask_phone("+93701234567"), "+93******567");
        assert_eq!(mask_email("zahra@example.org"), "z***@example.org");
    }
}

/// One try to deliver through one provider of one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt_id: String,
    pub channel: Channel,
    pub provider: String,
    pub status: Status,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// A failure the provider will repeat (invalid number, ...): never retried.
    #[serde(default)]
    pub permanent: bool,
}

/// Where to try next: the request's channels in order, each channel's
/// providers in the configured order, skipping a provider that refused
/// permanently or has failed `max_tries` times. `None`: everything is
/// exhausted.
pub fn next_route<'a>(
    channels: &[Channel],
    attempts: &[Attempt],
    providers: &'a [(Channel, &'a str)],
    max_tries: usize,
) -> Option<(Channel, &'a str)> {
    channels.iter().find_map(|channel| {
        providers.iter().filter(|(c, _)| c == channel).find_map(|(c, p)| {
            let tried: Vec<_> = attempts.iter().filter(|a| a.channel == *c && a.provider == *p).collect();
            let dead = tried.iter().any(|a| a.permanent)
                || tried.iter().filter(|a| a.status == Status::Failed).count() >= max_tries;
            (!dead).then_some((*c, *p))
        })
    })
}

/// How many transient failures a route has had.
pub fn failures(attempts: &[Attempt], channel: Channel, provider: &str) -> usize {
    attempts.iter().filter(|a| a.channel == channel && a.provider == provider && a.status == Status::Failed).count()
}

/// Quiet hours: a `normal` message due in the clinic's quiet hours in the
/// recipient's time zone waits for their end; `high` goes now.
/// Returns when it may go, or `None` for now.
pub fn quiet_until(
    now: DateTime<Utc>,
    timezone: Option<&str>,
    priority: Priority,
    hours: QuietHours,
) -> Option<DateTime<Utc>> {
    use chrono::{TimeZone, Timelike};
    if priority == Priority::High || hours == QuietHours::NONE {
        return None;
    }
    let tz: chrono_tz::Tz = timezone?.parse().ok()?;
    let local = now.with_timezone(&tz);
    let hour = local.hour();
    if !hours.contains(hour) {
        return None;
    }
    let (start, end) = (hours.start, hours.end);
    let mut day = local.date_naive();
    if hour >= end && start > end {
        day = day.succ_opt()?;
    }
    let wake = tz.from_local_datetime(&day.and_hms_opt(end, 0, 0)?).earliest()?;
    Some(wake.with_timezone(&Utc))
}

/// The recipient as anyone may see it: masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MaskedRecipient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub push_tokens: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

impl MaskedRecipient {
    pub fn of(r: &Recipient) -> Self {
        Self {
            user_id: r.user_id.clone(),
            phone: r.phone.as_deref().map(mask_phone),
            email: r.email.as_deref().map(mask_email),
            push_tokens: r.push_tokens.len(),
            locale: r.locale.clone(),
        }
    }
}

/// A notification as stored: state in clear, personal data only sealed
/// (`sealed_recipient`: the `Recipient`; `sealed_messages`: the rendered
/// text per channel), opened only by the code that sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub notification_id: String,
    pub clinic_id: String,
    pub status: Status,
    pub channels: Vec<Channel>,
    pub priority: Priority,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    pub recipient: MaskedRecipient,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    pub sealed_recipient: String,
    pub sealed_messages: String,
    /// Each attempt's delivery as receipts report it, by attempt id: an
    /// entry is made when the attempt is claimed, so a receipt can only
    /// land on an attempt that exists. Always stored (receipts update
    /// `delivery.<attemptId>` in place).
    #[serde(default)]
    pub delivery: BTreeMap<String, Delivery>,
    /// Sent through a provider that sends receipts, and none final yet: the
    /// sweep expires it after the configured time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_receipt_since: Option<DateTime<Utc>>,
    /// Not yet sent, and expected to have moved on by this time (the claim
    /// judged, the backoff or wait over, plus slack): if it has not, the
    /// sweep puts it back on the dispatch queue. `None` once sent or final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile_at: Option<DateTime<Utc>>,
}

impl Notification {
    /// An attempt's status with its receipts: the furthest of what dispatch
    /// recorded and what the provider reported.
    pub fn attempt_status(&self, a: &Attempt) -> Status {
        match self.delivery.get(&a.attempt_id) {
            Some(d) if a.status.may_become(d.status) && a.status != Status::Failed => d.status,
            Some(d) if d.status == Status::Delivered => Status::Delivered,
            _ => a.status,
        }
    }

    /// The notification's status with its receipts: a sent notification
    /// takes the receipts of the attempt that sent it; a receipt saying
    /// `delivered` wins over anything (the patient has the message).
    pub fn effective_status(&self) -> Status {
        if self.attempts.iter().any(|a| self.attempt_status(a) == Status::Delivered) {
            return Status::Delivered;
        }
        match self.status {
            Status::Sent => self
                .attempts
                .iter()
                .rfind(|a| a.status == Status::Sent)
                .map_or(Status::Sent, |a| self.attempt_status(a)),
            other => other,
        }
    }

    /// What GET shows: state and attempts, the recipient masked, nothing sealed.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "notificationId": self.notification_id,
            "status": self.effective_status(),
            "channel": self.channel,
            "provider": self.provider,
            "attempts": self.attempts.iter().map(|a| {
                let receipt = self.delivery.get(&a.attempt_id).filter(|d| d.provider_status.is_some());
                serde_json::json!({
                    "channel": a.channel, "provider": a.provider, "status": self.attempt_status(a), "at": a.at,
                    "error": a.error,
                    "errorCode": receipt.and_then(|d| d.code.clone()),
                    "providerStatus": receipt.and_then(|d| d.provider_status.clone()),
                })
            }).collect::<Vec<_>>(),
            "recipient": self.recipient,
            "priority": self.priority,
            "sendAt": self.send_at,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        })
    }

    /// What events carry: ids, channel, provider and state — no recipient.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "notificationId": self.notification_id,
            "status": self.status,
            "channel": self.channel,
            "provider": self.provider,
            "userId": self.recipient.user_id,
        })
    }
}
