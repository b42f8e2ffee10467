//! Delivery receipts: what each SMS provider's status means in vcare's
//! terms, where a receipt belongs, and the rule that a delivery never goes
//! backwards.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::{DomainEvent, NOTIFICATION_DELIVERED, NOTIFICATION_FAILED};
use crate::ids::is_valid_external_id;
use crate::notification::Status;

/// Where a receipt belongs: the clinic, the notification and the attempt.
/// Carried in the callback URL as `ref=<clinic>~<notification>~<attempt>`
/// (`~` is in no id), so the callback finds the record without a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRef {
    pub clinic_id: String,
    pub notification_id: String,
    pub attempt_id: String,
}

fn is_vcare_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('_')).is_some_and(|rest| {
        (10..=64).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

impl ReceiptRef {
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('~');
        let (clinic, notification, attempt) = (parts.next()?, parts.next()?, parts.next()?);
        (parts.next().is_none()
            && is_valid_external_id(clinic)
            && is_vcare_id(notification, "ntf")
            && is_vcare_id(attempt, "att"))
        .then(|| ReceiptRef {
            clinic_id: clinic.to_owned(),
            notification_id: notification.to_owned(),
            attempt_id: attempt.to_owned(),
        })
    }
}

impl std::fmt::Display for ReceiptRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}~{}~{}", self.clinic_id, self.notification_id, self.attempt_id)
    }
}

/// Twilio's message statuses. `None`: not a delivery state vcare tracks
/// (inbound `receiving`/`received`, or one Twilio adds later); the receipt
/// is kept but changes nothing.
pub fn twilio_status(status: &str) -> Option<Status> {
    Some(match status {
        "accepted" | "scheduled" | "queued" => Status::Queued,
        "sending" => Status::Sending,
        "sent" => Status::Sent,
        "delivered" | "read" => Status::Delivered,
        "undelivered" => Status::Undelivered,
        "failed" | "canceled" => Status::Failed,
        _ => return None,
    })
}

/// Vonage's SMS API DLR statuses. `accepted`/`buffered` mean the network
/// has it (sent); `unknown` says nothing new (sent, until the sweep expires
/// it); `rejected` was refused before the network (failed).
pub fn vonage_status(status: &str) -> Option<Status> {
    Some(match status {
        "accepted" | "buffered" | "unknown" => Status::Sent,
        "delivered" => Status::Delivered,
        "expired" => Status::Expired,
        "failed" | "rejected" => Status::Failed,
        _ => return None,
    })
}

/// The in-country gateway's SMPP-style states (API.md).
pub fn gateway_status(status: &str) -> Option<Status> {
    Some(match status {
        "ACCEPTD" | "ENROUTE" | "UNKNOWN" => Status::Sent,
        "DELIVRD" => Status::Delivered,
        "UNDELIV" => Status::Undelivered,
        "EXPIRED" => Status::Expired,
        "REJECTD" => Status::Failed,
        _ => return None,
    })
}

/// An attempt's delivery as receipts report it. `rank` is stored beside
/// the status so that a receipt applies with one conditional write
/// (`rank < :new`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub status: Status,
    pub rank: u8,
    pub at: DateTime<Utc>,
    /// The provider's own word (e.g. `undelivered`, `DELIVRD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_status: Option<String>,
    /// The provider's error code, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The provider the attempt went to: a receipt applies only if it comes
    /// from it (a signed Twilio receipt must not move a gateway attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl Delivery {
    pub fn new(status: Status, at: DateTime<Utc>) -> Self {
        Delivery { status, rank: status.rank(), at, provider_status: None, code: None, provider: None }
    }

    /// The same, for an attempt of `provider`.
    pub fn by(self, provider: &str) -> Self {
        Delivery { provider: Some(provider.to_owned()), ..self }
    }

    /// Does `next` move this delivery on? Ranks only rise; terminal states
    /// stick, except that a late `delivered` replaces `expired`.
    pub fn advances_to(current: Option<&Delivery>, next: Status) -> bool {
        current.is_none_or(|c| c.status.may_become(next))
    }
}

/// The domain event a receipt produces, if any: `delivered`, or `failed`
/// for `undelivered`/`failed`. Its id is derived from the attempt and the
/// kind, so a receipt repeated (or re-applied by the sweep) is one event.
pub fn receipt_event(r: &ReceiptRef, provider: &str, d: &Delivery) -> Option<DomainEvent> {
    let kind = match d.status {
        Status::Delivered => NOTIFICATION_DELIVERED,
        Status::Undelivered | Status::Failed => NOTIFICATION_FAILED,
        _ => return None,
    };
    Some(DomainEvent::stable(
        kind,
        &r.clinic_id,
        &r.notification_id,
        &format!("{}#{}", r.notification_id, r.attempt_id),
        d.at,
        serde_json::json!({
            "notificationId": r.notification_id,
            "attemptId": r.attempt_id,
            "channel": "sms",
            "provider": provider,
            "status": d.status,
            "providerStatus": d.provider_status,
            "errorCode": d.code,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_status_maps() {
        use Status::*;
        for (s, want) in [
            ("accepted", Some(Queued)),
            ("scheduled", Some(Queued)),
            ("queued", Some(Queued)),
            ("sending", Some(Sending)),
            ("sent", Some(Sent)),
            ("delivered", Some(Delivered)),
            ("read", Some(Delivered)),
            ("undelivered", Some(Undelivered)),
            ("failed", Some(Failed)),
            ("canceled", Some(Failed)),
            ("receiving", None),
            ("received", None),
        ] {
            assert_eq!(twilio_status(s), want, "twilio {s}");
        }
        for (s, want) in [
            ("delivered", Some(Delivered)),
            ("expired", Some(Expired)),
            ("failed", Some(Failed)),
            ("rejected", Some(Failed)),
            ("accepted", Some(Sent)),
            ("buffered", Some(Sent)),
            ("unknown", Some(Sent)),
            ("DELIVERED", None),
        ] {
            assert_eq!(vonage_status(s), want, "vonage {s}");
        }
        for (s, want) in [
            ("DELIVRD", Some(Delivered)),
            ("UNDELIV", Some(Undelivered)),
            ("EXPIRED", Some(Expired)),
            ("REJECTD", Some(Failed)),
            ("ACCEPTD", Some(Sent)),
            ("ENROUTE", Some(Sent)),
            ("UNKNOWN", Some(Sent)),
            ("delivrd", None),
        ] {
            assert_eq!(gateway_status(s), want, "gateway {s}");
        }
    }

    #[test]
    fn deliveries_never_go_backwards() {
        use Status::*;
        let at = Utc::now();
        let d = |s| Some(Delivery::new(s, at));
        assert!(Delivery::advances_to(None, Sent));
        assert!(Delivery::advances_to(d(Sending).as_ref(), Sent));
        assert!(Delivery::advances_to(d(Sent).as_ref(), Delivered));
        assert!(!Delivery::advances_to(d(Sent).as_ref(), Sent), "a duplicate");
        assert!(!Delivery::advances_to(d(Delivered).as_ref(), Sent), "a late sent");
        for terminal in [Delivered, Undelivered, Failed, Expired] {
            for next in [Queued, Sending, Sent, Undelivered, Failed, Expired] {
                assert!(!Delivery::advances_to(d(terminal).as_ref(), next), "{terminal:?} -> {next:?}");
            }
        }
        assert!(Delivery::advances_to(d(Expired).as_ref(), Delivered), "a late delivered replaces expired");
        assert!(!Delivery::advances_to(d(Undelivered).as_ref(), Delivered));
    }

    #[test]
    fn receipt_refs_round_trip_and_refuse_anything_else() {
        let r = ReceiptRef {
            clinic_id: "c-1.kabul".into(),
            notification_id: "ntf_abcdefghijklmnopqrstuvwxyz".into(),
            attempt_id: "att_abcdefghijklmnopqrstuvwx23".into(),
        };
        assert_eq!(ReceiptRef::parse(&r.to_string()), Some(r.clone()));
        for bad in [
            "",
            "c1~ntf_abcdefghijklmnop",
            "c1~ntf_abcdefghijklmnop~att_abcdefghijklmnop~x",
            "c 1~ntf_abcdefghijklmnop~att_abcdefghijklmnop",
            "c1~rm_abcdefghijklmnop~att_abcdefghijklmnop",
            "c1~ntf_ABCDEFGHIJKLMNOP~att_abcdefghijklmnop",
            "c1~ntf_abcdefghijklmnop~att_short",
        ] {
            assert_eq!(ReceiptRef::parse(bad), None, "{bad}");
        }
    }
}
