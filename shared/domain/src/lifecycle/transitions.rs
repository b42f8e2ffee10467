//! The changes dispatch makes to a notification, as pure functions from the
//! notification just read to its next state and events. Each returns `None`
//! when the change no longer applies (someone else moved it on), so it can
//! be handed to the store's version-checked update as it is.

use chrono::{DateTime, Duration, Utc};

use super::{MAX_WAIT_SECONDS, SendOutcome, reconcile_at};
use crate::consent::SkipReason;
use crate::events::{DomainEvent, NOTIFICATION_FAILED, NOTIFICATION_SENT, NOTIFICATION_SUPPRESSED};
use crate::notification::{Attempt, Channel, Notification, Status};
use crate::receipt::Delivery;

/// A change: the next state and its events, or `None` for no change.
pub type Change = Option<(Notification, Vec<DomainEvent>)>;

/// The reason a written-off claim is recorded with.
pub const WRITTEN_OFF: &str = "no outcome was recorded";

/// A route about to be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim<'a> {
    pub attempt_id: &'a str,
    pub channel: Channel,
    pub provider: &'a str,
}

/// A recipient after dead push tokens were dropped: sealed again, and how
/// many tokens are left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanedRecipient {
    pub sealed: String,
    pub push_tokens: usize,
}

/// What became of a claimed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult<'a> {
    pub attempt_id: &'a str,
    pub outcome: &'a SendOutcome,
    /// The provider sends delivery receipts (then a sent notification
    /// awaits them).
    pub receipts: bool,
    pub cleaned: Option<&'a CleanedRecipient>,
    /// When a transient failure is retried; `None`: at once (the next route).
    pub retry_at: Option<DateTime<Utc>>,
}

/// Claims a route before its provider is called: a `sending` attempt, only
/// on the very state the decision was made from (`seen`). Judged stale at
/// `now + claim_timeout`, so that is when the sweep should look.
pub fn claim(
    current: &Notification,
    seen: &Notification,
    c: Claim<'_>,
    now: DateTime<Utc>,
    claim_timeout: Duration,
) -> Change {
    if current != seen {
        return None;
    }
    let mut next = current.clone();
    next.attempts.push(Attempt {
        attempt_id: c.attempt_id.to_owned(),
        channel: c.channel,
        provider: c.provider.to_owned(),
        status: Status::Sending,
        at: now,
        error: None,
        provider_message_id: None,
        permanent: false,
        ends_channel: false,
    });
    next.delivery.insert(c.attempt_id.to_owned(), Delivery::new(Status::Sending, now).by(c.provider));
    if next.status.may_become(Status::Sending) {
        next.status = Status::Sending;
    }
    next.channel = Some(c.channel);
    next.provider = Some(c.provider.to_owned());
    next.updated_at = now;
    next.reconcile_at = Some(reconcile_at(now + claim_timeout));
    Some((next, Vec::new()))
}

/// Whether `n`'s last attempt is the live claim `attempt_id`.
pub fn holds_claim(n: &Notification, attempt_id: &str) -> bool {
    n.attempts.last().is_some_and(|a| a.attempt_id == attempt_id && a.status == Status::Sending)
}

/// Records a claimed attempt's outcome. Sent: the attempt and the
/// notification become `sent` (once: the `sent` event), a receipt that came
/// first stays. Failed: the attempt keeps its reason and whether it is
/// permanent. `None` when the attempt is no longer a live claim (recorded
/// already, or written off).
pub fn record(current: &Notification, r: &AttemptResult<'_>, now: DateTime<Utc>) -> Change {
    let mut next = current.clone();
    let attempt = next.attempts.iter_mut().find(|a| a.attempt_id == r.attempt_id && a.status == Status::Sending)?;
    let mut events = Vec::new();
    match r.outcome {
        SendOutcome::Sent { provider_message_id } => {
            attempt.status = Status::Sent;
            attempt.provider_message_id = Some(provider_message_id.clone());
            let (channel, provider) = (attempt.channel, attempt.provider.clone());
            // A receipt may have come first (the provider's race): it stays.
            let delivery = next.delivery.entry(r.attempt_id.to_owned()).or_insert(Delivery::new(Status::Sending, now));
            if Delivery::advances_to(Some(delivery), Status::Sent) {
                *delivery = Delivery::new(Status::Sent, now).by(&provider);
            }
            if r.receipts && !delivery.status.is_terminal() {
                next.awaiting_receipt_since = Some(now);
            }
            if next.status.may_become(Status::Sent) {
                next.status = Status::Sent;
                next.channel = Some(channel);
                next.provider = Some(provider);
                events.push(DomainEvent::new(
                    NOTIFICATION_SENT,
                    &next.clinic_id,
                    &next.notification_id,
                    now,
                    next.summary(),
                ));
            }
        }
        failed => {
            attempt.status = Status::Failed;
            attempt.error = failed.reason().map(str::to_owned);
            attempt.permanent = failed.is_permanent();
            attempt.ends_channel = failed.ends_channel();
        }
    }
    if let Some(c) = r.cleaned {
        next.sealed_recipient = c.sealed.clone();
        next.recipient.push_tokens = c.push_tokens;
    }
    next.reconcile_at = (next.status.rank() < Status::Sent.rank()).then(|| reconcile_at(r.retry_at.unwrap_or(now)));
    next.updated_at = now;
    Some((next, events))
}

/// A claim that outlived its timeout: its container is gone, so it counts
/// as a transient failure with no outcome, and the notification goes on.
pub fn write_off(current: &Notification, attempt_id: &str, now: DateTime<Utc>) -> Change {
    let outcome = SendOutcome::Transient { reason: WRITTEN_OFF.into(), retry_after: None };
    let r = AttemptResult { attempt_id, outcome: &outcome, receipts: false, cleaned: None, retry_at: None };
    record(current, &r, now)
}

/// Every route is exhausted: `failed` (and its event), the reasons kept in
/// the attempts — or `suppressed` (and its event) when every channel of
/// the request was skipped, opted out or suppressed. Not when, since the
/// decision, another container claimed a route or sent it (the state the
/// store re-reads is not exhausted then).
pub fn fail(current: &Notification, now: DateTime<Utc>) -> Change {
    let claimed = current.attempts.last().is_some_and(|a| a.status == Status::Sending);
    if current.status.rank() >= Status::Sent.rank() || claimed {
        return None;
    }
    let mut next = current.clone();
    let (status, kind) = if all_skipped(current) {
        (Status::Suppressed, NOTIFICATION_SUPPRESSED)
    } else {
        (Status::Failed, NOTIFICATION_FAILED)
    };
    next.status = status;
    next.reconcile_at = None;
    next.updated_at = now;
    let event = DomainEvent::new(kind, &next.clinic_id, &next.notification_id, now, next.summary());
    Some((next, vec![event]))
}

/// Whether every channel of the request was skipped.
pub fn all_skipped(n: &Notification) -> bool {
    n.channels.iter().all(|c| n.attempts.iter().any(|a| a.channel == *c && a.status == Status::Skipped))
}

/// A channel closed to the recipient: a `skipped` attempt with the reason,
/// which ends the channel, no provider called. `None` when the channel is
/// already ended, or the notification moved on (sent, final, claimed).
pub fn skip(current: &Notification, channel: Channel, reason: SkipReason, now: DateTime<Utc>) -> Change {
    let claimed = current.attempts.last().is_some_and(|a| a.status == Status::Sending);
    let ended = current.attempts.iter().any(|a| a.channel == channel && a.ends_channel);
    if current.status.rank() >= Status::Sent.rank() || claimed || ended {
        return None;
    }
    let mut next = current.clone();
    next.attempts.push(Attempt {
        attempt_id: crate::ids::prefixed("att"),
        channel,
        provider: String::new(),
        status: Status::Skipped,
        at: now,
        error: Some(reason.as_str().to_owned()),
        provider_message_id: None,
        permanent: true,
        ends_channel: true,
    });
    next.updated_at = now;
    next.reconcile_at = Some(reconcile_at(now));
    Some((next, Vec::new()))
}

/// Where one wait of a notification ends: at `until`, but at most one queue
/// delay from `now` (a longer wait is waited again).
pub fn wait_end(until: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    until.min(now + Duration::seconds(MAX_WAIT_SECONDS))
}

/// Before a wait (`sendAt`, quiet hours) the notification's reconcile time
/// is moved past the wait's end, so the sweep does not take the wait for a
/// lost message. `None` when it needs no write: sent or final, or already
/// reconciled after the wait (a claim's reconcile time is its judgement
/// plus slack): one write per wait, not per message.
pub fn hold(current: &Notification, until: DateTime<Utc>, now: DateTime<Utc>) -> Change {
    let end = wait_end(until, now);
    if current.status.rank() >= Status::Sent.rank() || current.reconcile_at.is_some_and(|at| at >= end) {
        return None;
    }
    let mut next = current.clone();
    next.reconcile_at = Some(reconcile_at(end));
    Some((next, Vec::new()))
}
