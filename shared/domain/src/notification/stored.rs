//! A notification as stored, and its attempts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::*;
use crate::consent::ReplyAction;
use crate::receipt::Delivery;

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
    /// The refusal concerned the recipient (opted out, invalid or barred
    /// number): no provider of this channel is tried again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ends_channel: bool,
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
    /// What the message is about, for the recipient's preferences.
    #[serde(default = "general")]
    pub category: String,
    /// Keyed hashes of the recipient's SMS and e-mail addresses (never the
    /// addresses): what the clinic's suppression list is checked against.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub address_hashes: BTreeMap<Channel, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<ReplyAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    /// The template it was rendered from (a clinic's version, or the built-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<crate::templates::TemplateRef>,
}

fn general() -> String {
    crate::consent::DEFAULT_CATEGORY.to_owned()
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
                    "channel": a.channel, "provider": (!a.provider.is_empty()).then_some(&a.provider), "status": self.attempt_status(a), "at": a.at,
                    "error": a.error,
                    "errorCode": receipt.and_then(|d| d.code.clone()),
                    "providerStatus": receipt.and_then(|d| d.provider_status.clone()),
                })
            }).collect::<Vec<_>>(),
            "recipient": self.recipient,
            "priority": self.priority,
            "category": self.category,
            "sendAt": self.send_at,
            "template": self.template.as_ref().map(|t| &t.name),
            "templateVersion": self.template.as_ref().and_then(|t| t.version),
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
