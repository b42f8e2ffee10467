//! An inbound SMS, already authenticated, carried out (API.md "Inbound
//! SMS", "Replies"): a keyword suppresses, lifts or answers; a reply to a
//! message that offered replies emits its event once and is acknowledged,
//! checked against the room's current state; other text is kept sealed and
//! announced by ids only.
//!
//! Idempotent per provider message id: the effects (a suppression, its
//! lift, the answer under the key `inbound:<provider>:<id>`) repeat
//! harmlessly, and the message is marked handled — with the events it
//! emits, in one transaction — only after them. A repeat of a handled id
//! changes nothing, even after a later keyword from the same number.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use vcare_domain::clinic::PerClinic;
use vcare_domain::consent::{
    ANSWER_CATEGORY, ClinicWords, ConsentSource, InboundSms, Keyword, ReplyAction, ReplyOffer, Said, SentTo, classify,
};
use vcare_domain::events::{
    APPOINTMENT_CANCEL_REQUESTED, APPOINTMENT_CONFIRMED, APPOINTMENT_RESCHEDULE_REQUESTED, DomainEvent, REPLY_RECEIVED,
};
use vcare_domain::notification::{Channel, NotificationRequest, Priority, Recipient};
use vcare_domain::room::RoomStatus;
use vcare_runtime::{ConfigError, Env};
use vcare_store::RoomStore;

use crate::{AddressChange, Notifications, NotifyError, Submitted};

/// The numbers a clinic receives SMS on: `+93700000001,+93700000002`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Numbers(pub Vec<String>);

impl FromStr for Numbers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let numbers: Vec<String> = s.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect();
        if numbers.iter().any(|n| !vcare_domain::notification::is_e164(n)) {
            return Err("E.164 numbers separated by commas".into());
        }
        Ok(Numbers(numbers))
    }
}

/// What inbound SMS handling knows of the deployment.
#[derive(Debug, Clone)]
pub struct InboundSettings {
    /// Each clinic's own words (`CLINIC_KEYWORDS`).
    pub words: PerClinic<ClinicWords>,
    /// Which clinic owns which receiving number (`CLINIC_SMS_NUMBERS`); a
    /// number no clinic claims is answered for the clinic that sent the
    /// number its newest SMS.
    pub numbers: PerClinic<Numbers>,
    /// How long a message's offered replies stand (`REPLY_WINDOW_HOURS`, 48).
    pub reply_window: Duration,
    /// Twilio's Advanced Opt-Out answers STOP, START and HELP itself
    /// (`TWILIO_HANDLES_OPT_OUT`): vcare records them, without answering.
    pub twilio_handles_opt_out: bool,
}

impl InboundSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let per_clinic = |name: &str| env.get(name).unwrap_or("");
        fn invalid(name: &'static str) -> impl Fn(String) -> ConfigError {
            move |reason| ConfigError::Invalid { name: name.into(), reason }
        }
        Ok(Self {
            words: PerClinic::parse(ClinicWords::default(), per_clinic("CLINIC_KEYWORDS"))
                .map_err(invalid("CLINIC_KEYWORDS"))?,
            numbers: PerClinic::parse(Numbers::default(), per_clinic("CLINIC_SMS_NUMBERS"))
                .map_err(invalid("CLINIC_SMS_NUMBERS"))?,
            reply_window: Duration::hours(env.bounded("REPLY_WINDOW_HOURS", 48, 1, 24 * 30)?),
            twilio_handles_opt_out: env.parsed_or("TWILIO_HANDLES_OPT_OUT", false)?,
        })
    }

    fn clinic_of_number(&self, to: &str) -> Option<&str> {
        self.numbers.clinics.iter().find(|(_, n)| n.0.iter().any(|x| x == to)).map(|(c, _)| c.as_str())
    }
}

/// What became of an inbound message (for logs and tests; the provider
/// gets 204 either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// Its id was handled before: nothing changed.
    Repeat,
    /// No clinic owns the receiving number and vcare never sent the sender
    /// an SMS: nothing to do.
    NoClinic,
    Stopped,
    Started,
    Helped,
    /// A reply matched to a message: its event emitted.
    Replied(ReplyAction),
    /// A reply about a room that is cancelled or ended: answered so, no event.
    RoomClosed,
    /// A reply word with no message offering it within the window: nothing.
    NothingToReplyTo,
    /// Other text from a known sender: kept sealed, announced by ids.
    Text,
}

pub struct Inbound {
    pub settings: InboundSettings,
    rooms: RoomStore,
}

impl Inbound {
    pub fn new(settings: InboundSettings, rooms: RoomStore) -> Self {
        Self { settings, rooms }
    }

    pub fn from_env(env: &Env, sdk: &vcare_aws::SdkConfig) -> Result<Self, ConfigError> {
        let rooms = RoomStore::new(aws_sdk_dynamodb::Client::new(sdk), env.required("TABLE_NAME")?);
        Ok(Self::new(InboundSettings::from_env(env)?, rooms))
    }

    /// Carries out `m`, received through `provider` at `now`.
    pub async fn take(
        &self,
        comms: &Notifications,
        provider: &str,
        m: &InboundSms,
        now: DateTime<Utc>,
    ) -> Result<InboundOutcome, NotifyError> {
        if comms.consent.inbound_seen(provider, &m.message_id).await? {
            return Ok(InboundOutcome::Repeat);
        }
        let hash = comms.address_hash(Channel::Sms, &m.from).await?;
        let sent = comms.consent.sent_to(&hash).await?;
        let owner = m.to.as_deref().and_then(|to| self.settings.clinic_of_number(to));
        let Some(clinic) = owner.map(str::to_owned).or_else(|| sent.as_ref().map(|s| s.clinic_id.clone())) else {
            comms.consent.mark_inbound(provider, &m.message_id, None, &[], now).await?;
            return Ok(InboundOutcome::NoClinic);
        };
        // What vcare sent this number counts only when the same clinic sent it.
        let sent = sent.filter(|s| s.clinic_id == clinic);
        let said = classify(&m.text, self.settings.words.of(&clinic));
        let user = sent.as_ref().and_then(|s| s.user_id.clone());
        let locale = match &said {
            Said::Keyword { locale: Some(l), .. } | Said::Reply { locale: Some(l), .. } => Some(l.clone()),
            _ => sent.as_ref().and_then(|s| s.locale.clone()),
        };
        let answer = Answer { comms, provider, m, clinic: &clinic, user: user.as_deref(), locale, now };
        let quiet = provider == "twilio" && self.settings.twilio_handles_opt_out;
        let change = AddressChange {
            channel: Channel::Sms,
            hash: &hash,
            user: user.as_deref(),
            source: ConsentSource::SmsKeyword,
            by: user.as_deref().unwrap_or("patient"),
            reason: None,
            at: now,
        };
        let (outcome, events, sealed) = match said {
            Said::Keyword { keyword: Keyword::Stop, .. } => {
                comms.suppress(&clinic, &change).await?;
                if !quiet {
                    answer.send("sms-stopped").await?;
                }
                (InboundOutcome::Stopped, Vec::new(), None)
            }
            Said::Keyword { keyword: Keyword::Start, .. } => {
                comms.lift(&clinic, &change).await?;
                if !quiet {
                    answer.send("sms-started").await?;
                }
                (InboundOutcome::Started, Vec::new(), None)
            }
            Said::Keyword { keyword: Keyword::Help, .. } => {
                if !quiet {
                    answer.send("sms-help").await?;
                }
                (InboundOutcome::Helped, Vec::new(), None)
            }
            Said::Reply { action, .. } => match self.offer(sent.as_ref(), action, now) {
                None => (InboundOutcome::NothingToReplyTo, Vec::new(), None),
                Some(offer) => {
                    if self.room_closed(&clinic, offer).await? {
                        answer.send("reply-closed").await?;
                        (InboundOutcome::RoomClosed, Vec::new(), None)
                    } else {
                        answer.send(ack(action)).await?;
                        let event = reply_event(provider, m, &clinic, user.as_deref(), offer, action, now);
                        (InboundOutcome::Replied(action), vec![event], None)
                    }
                }
            },
            Said::Text => match &sent {
                None => (InboundOutcome::NoClinic, Vec::new(), None),
                Some(s) => {
                    let context = vcare_crypto::context(&clinic, &m.message_id, "inbound");
                    let sealed =
                        comms.envelope.seal(m.text.as_bytes(), &context).await.map_err(crate::BackendError::from)?;
                    let event = text_event(provider, m, &clinic, s, now);
                    (InboundOutcome::Text, vec![event], Some(sealed))
                }
            },
        };
        comms.consent.mark_inbound(provider, &m.message_id, sealed.as_deref(), &events, now).await?;
        Ok(outcome)
    }

    /// The newest message to the number that offered replies, if it
    /// offered this one and is within the window.
    fn offer<'a>(&self, sent: Option<&'a SentTo>, action: ReplyAction, now: DateTime<Utc>) -> Option<&'a ReplyOffer> {
        sent?.offer.as_ref().filter(|o| o.replies.contains(&action) && now - o.at <= self.settings.reply_window)
    }

    /// Whether the reply is about a room that is cancelled or ended now.
    async fn room_closed(&self, clinic: &str, offer: &ReplyOffer) -> Result<bool, NotifyError> {
        let Some(room_id) = offer.context.as_ref().and_then(|c| c.room_id.as_deref()) else { return Ok(false) };
        let room = self.rooms.get(clinic, room_id).await?;
        Ok(room.is_none_or(|(r, _)| matches!(r.status, RoomStatus::Cancelled | RoomStatus::Ended)))
    }
}

fn ack(action: ReplyAction) -> &'static str {
    match action {
        ReplyAction::Confirm => "reply-confirmed",
        ReplyAction::Reschedule => "reply-reschedule",
        ReplyAction::Cancel => "reply-cancel",
    }
}

/// The event a reply emits, once per inbound message (its id is stable).
fn reply_event(
    provider: &str,
    m: &InboundSms,
    clinic: &str,
    user: Option<&str>,
    offer: &ReplyOffer,
    action: ReplyAction,
    now: DateTime<Utc>,
) -> DomainEvent {
    let kind = match action {
        ReplyAction::Confirm => APPOINTMENT_CONFIRMED,
        ReplyAction::Reschedule => APPOINTMENT_RESCHEDULE_REQUESTED,
        ReplyAction::Cancel => APPOINTMENT_CANCEL_REQUESTED,
    };
    let context = offer.context.clone().unwrap_or_default();
    let data = serde_json::json!({
        "appointmentId": context.appointment_id,
        "roomId": context.room_id,
        "userId": user,
        "notificationId": offer.notification_id,
        "receivedAt": now,
    });
    let aggregate = context.appointment_id.as_deref().unwrap_or(&offer.notification_id);
    DomainEvent::stable(kind, clinic, aggregate, &format!("{provider}:{}", m.message_id), now, data)
}

/// Free text, announced by ids only: the text itself stays sealed.
fn text_event(provider: &str, m: &InboundSms, clinic: &str, sent: &SentTo, now: DateTime<Utc>) -> DomainEvent {
    let inbound_id = vcare_domain::digest::sha256_hex(format!("{provider}:{}", m.message_id).as_bytes());
    let data = serde_json::json!({
        "inboundId": inbound_id,
        "userId": sent.user_id,
        "notificationId": sent.offer.as_ref().map(|o| o.notification_id.clone()),
        "receivedAt": now,
    });
    DomainEvent::stable(REPLY_RECEIVED, clinic, &inbound_id, &inbound_id, now, data)
}

/// An answer to the sender, through the normal accept and dispatch path,
/// under a key of the inbound message (sent once however often the
/// provider posts it).
struct Answer<'a> {
    comms: &'a Notifications,
    provider: &'a str,
    m: &'a InboundSms,
    clinic: &'a str,
    user: Option<&'a str>,
    locale: Option<String>,
    now: DateTime<Utc>,
}

impl Answer<'_> {
    async fn send(&self, template: &str) -> Result<(), NotifyError> {
        let request = NotificationRequest {
            recipient: Recipient {
                user_id: self.user.map(str::to_owned),
                phone: Some(self.m.from.clone()),
                email: None,
                push_tokens: Vec::new(),
                locale: self.locale.clone(),
                timezone: None,
            },
            channels: vec![Channel::Sms],
            template: Some(template.to_owned()),
            variables: BTreeMap::new(),
            content: None,
            priority: Priority::High,
            send_at: None,
            category: Some(ANSWER_CATEGORY.to_owned()),
            context: None,
            replies: Vec::new(),
            template_version: None,
        };
        let key = format!("inbound:{}:{}", self.provider, self.m.message_id);
        match self.comms.submit_answer(self.clinic, &key, request, self.now).await? {
            Submitted::Accepted(_) | Submitted::InProgress => Ok(()),
            Submitted::Conflict => {
                tracing::warn!(
                    provider = self.provider,
                    "an answer under this inbound message's key differs; not sent again"
                );
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn bad_inbound_settings_fail_the_cold_start_by_name_and_never_echo_a_value() {
        for (name, bad) in [
            ("CLINIC_KEYWORDS", "c-1=stop:x"),
            ("CLINIC_KEYWORDS", "c-1=fa/jump:x"),
            ("CLINIC_SMS_NUMBERS", "c-1=0701234567"),
            ("CLINIC_SMS_NUMBERS", "not a clinic=+93700000001"),
            ("REPLY_WINDOW_HOURS", "0"),
            ("TWILIO_HANDLES_OPT_OUT", "sometimes"),
        ] {
            let err = InboundSettings::from_env(&env(&[(name, bad)])).unwrap_err().to_string();
            assert!(err.contains(name), "{name}: {err}");
            assert!(!err.contains("0701234567"), "{err}");
        }
        let ok = InboundSettings::from_env(&env(&[("CLINIC_SMS_NUMBERS", "c-1=+93700000001, +93700000002")])).unwrap();
        assert_eq!(ok.clinic_of_number("+93700000002"), Some("c-1"));
        assert_eq!(ok.clinic_of_number("+93700000003"), None);
    }
}
