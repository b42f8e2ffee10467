//! A notification request and its rules.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::*;
use crate::Rejected;
use crate::consent::{ANSWER_CATEGORY, DEFAULT_CATEGORY, ReplyAction, is_category};
use crate::ids::is_valid_external_id;

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
    /// A clinic template's version (default: its active one).
    #[serde(default)]
    pub template_version: Option<u64>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default)]
    pub send_at: Option<String>,
    /// What the message is about, for preferences: default the template's,
    /// else `general`.
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub context: Option<Context>,
    /// The reply words the message offers (SMS).
    #[serde(default)]
    pub replies: Vec<ReplyAction>,
}

/// What a message is about: a reply to it is checked against this.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Context {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
}

/// What to send: a named template with variables, or literal content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Message {
    Template { name: String, version: Option<u64>, variables: BTreeMap<String, String> },
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
    pub category: String,
    pub context: Option<Context>,
    pub replies: Vec<ReplyAction>,
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
pub(crate) fn is_locale(l: &str) -> bool {
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
        self.validate_as(now, timezone_ok, push, false)
    }

    /// [`Self::validate`], for vcare's own answers to a patient's SMS
    /// (`answers`: the reserved [`ANSWER_CATEGORY`] is allowed).
    pub fn validate_as(
        self,
        now: DateTime<Utc>,
        timezone_ok: impl Fn(&str) -> bool,
        push: &crate::push::PushEndpoints,
        answers: bool,
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
                if self.template_version == Some(0) {
                    return Err(Invalid("templateVersion: 1 or more".into()));
                }
                Message::Template { name, version: self.template_version, variables: self.variables }
            }
            (None, Some(content)) => {
                if self.template_version.is_some() {
                    return Err(Invalid("templateVersion goes with template, not content".into()));
                }
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
        let category = match (self.category, &message) {
            (Some(c), _) if !is_category(&c) => return Err(Invalid("category: 1 to 64 of a-z 0-9 -".into())),
            (Some(c), _) if c == ANSWER_CATEGORY && !answers => {
                return Err(Invalid(format!("category: {ANSWER_CATEGORY} is vcare's own")));
            }
            (Some(c), _) => c,
            (None, Message::Template { name, .. }) => {
                crate::templates::category(name).unwrap_or(DEFAULT_CATEGORY).to_owned()
            }
            (None, Message::Content(_)) => DEFAULT_CATEGORY.to_owned(),
        };
        if let Some(c) = &self.context
            && [&c.appointment_id, &c.room_id].into_iter().flatten().any(|id| !is_valid_external_id(id))
        {
            return Err(Invalid("context: ids are 1 to 128 of A-Z a-z 0-9 . _ : @ -".into()));
        }
        let mut replies = self.replies;
        replies.sort();
        replies.dedup();
        if !replies.is_empty() && !self.channels.contains(&Channel::Sms) {
            return Err(Impossible("replies: offered by SMS only; channels has no sms".into()));
        }
        Ok(NewNotification {
            recipient: self.recipient,
            channels: self.channels,
            message,
            priority: self.priority,
            send_at,
            category,
            context: self.context,
            replies,
        })
    }
}
