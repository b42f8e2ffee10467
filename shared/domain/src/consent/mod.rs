//! What a patient wants (API.md "Consent, preferences, replies and join
//! links"): preferences by channel and category (`preferences`), the
//! consent history every change leaves (`ConsentEntry`), the suppressions
//! a STOP or a provider makes, the words an SMS may say (`keywords`), and
//! what dispatch may do with a notification given all of them (`Gate`).

mod keywords;
mod preferences;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clinic::QuietHours;
use crate::notification::{Channel, Notification};

pub use keywords::*;
pub use preferences::*;

/// The built-in categories; a notification without one is `general`.
pub const CATEGORIES: &[&str] = &[
    "appointment-reminders",
    "consultation-links",
    "appointment-updates",
    "medication-reminders",
    "care-updates",
    "waiting-room",
    "general",
];
pub const DEFAULT_CATEGORY: &str = "general";

/// vcare's answers to a patient's own SMS (STOP, START, HELP, a reply):
/// they answer what the patient just sent, so no suppression or
/// preference holds them. Reserved: a request may not name it.
pub const ANSWER_CATEGORY: &str = "sms-answers";

/// An SMS a patient sent, as a provider reported it (signature checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    /// The provider's id of the message: the same message posted again has it.
    pub message_id: String,
    /// The sender, E.164.
    pub from: String,
    /// The number it was sent to, E.164, when the provider says.
    pub to: Option<String>,
    pub text: String,
}

/// `[a-z0-9-]{1,64}`.
pub fn is_category(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Where a consent change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentSource {
    /// The patient or the clinic through the preferences API.
    Api,
    /// A STOP / START keyword by SMS.
    SmsKeyword,
    /// A provider said the number opted out (Twilio 21610).
    Provider,
    /// A clinic-admin lifted a suppression.
    Admin,
}

/// One line of the consent history: append-only, never changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentEntry {
    pub at: DateTime<Utc>,
    /// The channel it is about; none for consents that are not about
    /// messages (a recording's, `crate::recording`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub granted: bool,
    pub source: ConsentSource,
    /// Who: the caller's id, `patient` for a keyword from a number no user
    /// is known for, or the provider's name.
    pub by: String,
    /// Why, when a clinic-admin lifted a suppression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why dispatch did not try a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The recipient's preferences turn the channel (or its category on
    /// the channel) off.
    OptedOut,
    /// The address is on the clinic's suppression list.
    Suppressed,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptedOut => "opted-out",
            Self::Suppressed => "suppressed",
        }
    }
}

/// What the recipient's preferences and the clinic's suppressions allow a
/// notification, read at send time: the channels closed, and the
/// recipient's own quiet hours and time zone, which override the clinic's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gate {
    pub closed: Vec<(Channel, SkipReason)>,
    pub quiet_hours: Option<QuietHours>,
    pub timezone: Option<String>,
}

impl Gate {
    /// Nothing known yet: every channel open, the clinic's quiet hours.
    pub fn open() -> Self {
        Self::default()
    }

    pub fn closed(&self, channel: Channel) -> Option<SkipReason> {
        self.closed.iter().find(|(c, _)| *c == channel).map(|(_, r)| *r)
    }
}

/// The gate for a notification of `category` on `channels`, given the
/// recipient's preferences (if any are stored) and which of the channels'
/// addresses are suppressed. A suppression wins over a preference.
pub fn gate(prefs: Option<&Preferences>, category: &str, channels: &[Channel], suppressed: &[Channel]) -> Gate {
    if category == ANSWER_CATEGORY {
        return Gate::open();
    }
    let closed = channels
        .iter()
        .filter_map(|c| {
            if suppressed.contains(c) {
                Some((*c, SkipReason::Suppressed))
            } else if prefs.is_some_and(|p| !p.allows(*c, category)) {
                Some((*c, SkipReason::OptedOut))
            } else {
                None
            }
        })
        .collect();
    Gate {
        closed,
        quiet_hours: prefs.and_then(|p| p.quiet_hours.as_deref()).and_then(|q| q.parse().ok()),
        timezone: prefs.and_then(|p| p.timezone.clone()),
    }
}

/// An address on a clinic's suppression list: since when, and who put it
/// there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    pub since: DateTime<Utc>,
    pub source: ConsentSource,
}

/// A message that offered replies: what a reply from its number is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyOffer {
    pub notification_id: String,
    pub replies: Vec<ReplyAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<crate::notification::Context>,
    pub at: DateTime<Utc>,
}

/// The newest SMS vcare sent a number (by the number's keyed hash): which
/// clinic and user it was for, in which language, and the newest message
/// to it that offered replies. An inbound SMS is read against this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentTo {
    pub clinic_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<ReplyOffer>,
}

/// The consent history's subject for an address no user is known for.
pub fn address_subject(channel: Channel, hash: &str) -> String {
    format!("addr:{}:{hash}", channel.as_str())
}

/// The number's entry in the SMS index once `n` is sent by SMS (what a
/// reply or a keyword from it is read against): its clinic, user and
/// language, and its offer of replies. `None` for vcare's own answers to a
/// patient's SMS, which are not what a reply is about, and for a
/// notification without the number's hash.
pub fn sent_to(n: &Notification, locale: Option<String>, now: DateTime<Utc>) -> Option<(String, SentTo)> {
    let hash = n.address_hashes.get(&Channel::Sms).filter(|_| n.category != ANSWER_CATEGORY)?;
    let offer = (!n.replies.is_empty()).then(|| ReplyOffer {
        notification_id: n.notification_id.clone(),
        replies: n.replies.clone(),
        context: n.context.clone(),
        at: now,
    });
    let sent = SentTo { clinic_id: n.clinic_id.clone(), user_id: n.recipient.user_id.clone(), locale, at: now, offer };
    Some((hash.clone(), sent))
}
