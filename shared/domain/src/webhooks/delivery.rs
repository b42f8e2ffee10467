//! One event's delivery to one endpoint (issue 22): its record, and what a
//! try comes to — for the delivery (done, retried when, given up) and for
//! its endpoint (healthy again, failing since, disabled: 410 at once, or
//! no success for [`DISABLE_AFTER_DAYS`] days).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::retry::next_attempt;
use crate::digest::sha256_hex;

/// An endpoint with no successful delivery for this long is disabled.
pub const DISABLE_AFTER_DAYS: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up after the schedule.
    Failed,
    /// The endpoint answered 410.
    Gone,
    /// The endpoint was deleted or disabled before it was sent.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TryLog {
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `delivered`, `gone`, or why it failed (never the answer's body).
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub delivery_id: String,
    pub clinic_id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    /// The payload, as signed and sent on every try.
    pub body: String,
    pub state: DeliveryState,
    pub tries: Vec<TryLog>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<DateTime<Utc>>,
}

/// The same event to the same endpoint is the same delivery (and its
/// `webhook-id`, so the receiver de-duplicates). It begins with the
/// event's time in milliseconds, fixed-width, so an endpoint's deliveries
/// sort by when their events happened.
pub fn delivery_id(event_id: &str, endpoint_id: &str, event_time: DateTime<Utc>) -> String {
    let hash = sha256_hex(format!("{event_id}\n{endpoint_id}").as_bytes());
    format!("msg_{:013}_{}", event_time.timestamp_millis().max(0), &hash[..24])
}

/// Whether `id` could be a delivery id (a path parameter, a cursor).
pub fn is_delivery_id(id: &str) -> bool {
    id.len() == 4 + 13 + 1 + 24
        && id.starts_with("msg_")
        && id[4..17].bytes().all(|b| b.is_ascii_digit())
        && &id[17..18] == "_"
        && id[18..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a queued try of `record` is still the one to make: the delivery
/// waits, and no try has been recorded since the message was queued after
/// `queued_after` of them. A copy of a message (SQS delivers at least
/// once, a replayed event fans out again) or one a redelivery overtook is
/// dropped, so a delivery never runs two retry chains.
pub fn wants_try(record: &DeliveryRecord, queued_after: usize) -> bool {
    record.state == DeliveryState::Pending && record.tries.len() == queued_after
}

/// What a try answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tried {
    Delivered(u16),
    Gone,
    Failed { status: Option<u16>, reason: String },
}

/// What becomes of the endpoint after a try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointChange {
    Unchanged,
    /// A success: no longer failing.
    Healthy,
    /// The first failure since the last success.
    FailingSince(DateTime<Utc>),
    /// `gone` (410) or `failing` (no success for 5 days).
    Disable(&'static str),
}

/// The delivery after a try at `now`, when to try again (`None`: done or
/// given up), and what becomes of its endpoint (failing since
/// `failing_since`, if it was). `jitter` in [0, 1).
pub fn after_try(
    mut record: DeliveryRecord,
    failing_since: Option<DateTime<Utc>>,
    tried: Tried,
    now: DateTime<Utc>,
    jitter: f64,
) -> (DeliveryRecord, Option<DateTime<Utc>>, EndpointChange) {
    let (status, result) = match &tried {
        Tried::Delivered(s) => (Some(*s), "delivered".to_owned()),
        Tried::Gone => (Some(410), "gone".to_owned()),
        Tried::Failed { status, reason } => (*status, reason.chars().take(200).collect()),
    };
    record.tries.push(TryLog { at: now, status, result });
    let (state, retry, change) = match tried {
        Tried::Delivered(_) => (
            DeliveryState::Delivered,
            None,
            if failing_since.is_some() { EndpointChange::Healthy } else { EndpointChange::Unchanged },
        ),
        Tried::Gone => (DeliveryState::Gone, None, EndpointChange::Disable("gone")),
        Tried::Failed { .. } => {
            let since = failing_since.unwrap_or(now);
            let change = if now - since >= Duration::days(DISABLE_AFTER_DAYS) {
                EndpointChange::Disable("failing")
            } else if failing_since.is_none() {
                EndpointChange::FailingSince(now)
            } else {
                EndpointChange::Unchanged
            };
            match (next_attempt(record.tries.len(), now, jitter), &change) {
                (Some(at), EndpointChange::Unchanged | EndpointChange::FailingSince(_)) => {
                    (DeliveryState::Pending, Some(at), change)
                }
                _ => (DeliveryState::Failed, None, change),
            }
        }
    };
    record.state = state;
    record.next_at = retry;
    (record, retry, change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> DeliveryRecord {
        DeliveryRecord {
            delivery_id: delivery_id("e1", "whe_1", Utc::now()),
            clinic_id: "c1".into(),
            endpoint_id: "whe_1".into(),
            event_id: "e1".into(),
            event_type: "virtual_care.room.created".into(),
            body: "{}".into(),
            state: DeliveryState::Pending,
            tries: Vec::new(),
            created_at: Utc::now(),
            next_at: None,
        }
    }

    fn failed() -> Tried {
        Tried::Failed { status: Some(503), reason: "answered 503".into() }
    }

    #[test]
    fn only_the_newest_queued_try_of_a_waiting_delivery_is_made() {
        let fresh = record();
        assert!(wants_try(&fresh, 0), "the fan-out's message");
        let (once, retry, _) = after_try(fresh.clone(), None, failed(), Utc::now(), 0.5);
        assert!(retry.is_some());
        assert!(wants_try(&once, 1), "the retry queued after one try");
        assert!(!wants_try(&once, 0), "a copy of the first message, after the try");
        let (done, _, _) = after_try(once, None, Tried::Delivered(200), Utc::now(), 0.5);
        assert!(!wants_try(&done, 2), "a delivery that is over");
        assert!(!wants_try(&done, 1));
    }

    #[test]
    fn a_failure_is_retried_by_the_schedule_then_given_up() {
        let now = Utc::now();
        let (r, retry, change) = after_try(record(), None, failed(), now, 1.0);
        assert_eq!(
            (r.state, retry, change),
            (DeliveryState::Pending, Some(now + Duration::seconds(5)), EndpointChange::FailingSince(now))
        );
        let mut r = r;
        for _ in 1..10 {
            let (next, retry, _) = after_try(r, Some(now), failed(), now, 0.5);
            assert!(retry.is_some());
            r = next;
        }
        let (r, retry, _) = after_try(r, Some(now), failed(), now, 0.5);
        assert_eq!((r.state, retry, r.tries.len()), (DeliveryState::Failed, None, 11), "given up after 11 tries");
    }

    #[test]
    fn a_success_heals_410_disables_and_five_failing_days_disable() {
        let now = Utc::now();
        let (r, retry, change) = after_try(record(), Some(now - Duration::hours(3)), Tried::Delivered(200), now, 0.5);
        assert_eq!((r.state, retry, change), (DeliveryState::Delivered, None, EndpointChange::Healthy));
        let (r, _, change) = after_try(record(), None, Tried::Gone, now, 0.5);
        assert_eq!((r.state, change), (DeliveryState::Gone, EndpointChange::Disable("gone")));
        let (r, retry, change) = after_try(record(), Some(now - Duration::days(5)), failed(), now, 0.5);
        assert_eq!((r.state, retry, change), (DeliveryState::Failed, None, EndpointChange::Disable("failing")));
        assert_eq!(delivery_id("e1", "whe_1", now), delivery_id("e1", "whe_1", now));
        assert_ne!(delivery_id("e1", "whe_1", now), delivery_id("e1", "whe_2", now));
        let (early, late) = (delivery_id("e9", "whe_1", now - Duration::days(1)), delivery_id("e1", "whe_1", now));
        assert!(early < late, "ids sort by the event's time");
        assert!(is_delivery_id(&late) && !is_delivery_id("msg_x") && !is_delivery_id(&format!("{late}0")));
    }
}
