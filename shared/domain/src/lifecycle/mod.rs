//! What dispatch does next with a notification, and when a notification
//! that has not moved on is overdue: pure functions of (notification, now,
//! routes, settings), no AWS and no clock of their own.
//!
//! The one rule the crash tests hold it to: waiting for an attempt that
//! another container claimed is a [`Step::Wait`] until the claim can be
//! judged — never a failure that spends the queue's receive budget.

mod budget;
mod outcome;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transition_tests;
mod transitions;

use chrono::{DateTime, Duration, Utc};

use crate::clinic::QuietHours;
use crate::consent::{Gate, SkipReason};
use crate::notification::{Channel, Notification, Status, failures, next_route, quiet_until};

pub use budget::{CLAIM_MARGIN_SECONDS, MIN_RECEIVES, TimeBudget};
pub use outcome::{SendOutcome, backoff, combine};
pub use transitions::{
    AttemptResult, Change, Claim, CleanedRecipient, WRITTEN_OFF, all_skipped, claim, fail, hold, holds_claim, record,
    skip, wait_end, write_off,
};

/// SQS's longest message delay: one wait is at most this long.
pub const MAX_WAIT_SECONDS: i64 = 900;

/// How long past its expected next change a notification may go unchanged
/// before the sweep re-queues it (the sweep runs every minute).
pub const RECONCILE_SLACK_SECONDS: i64 = 300;

/// What dispatch knows of its own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    /// How long a claimed attempt is honoured before it is written off.
    pub claim_timeout: Duration,
    /// Transient failures a provider gets before failing over.
    pub max_tries: usize,
    pub quiet_hours: QuietHours,
    /// The first backoff after a transient failure; it doubles per try.
    pub retry_base: std::time::Duration,
}

/// Why a notification waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// `sendAt` is later.
    SendAt,
    /// The recipient's quiet hours.
    QuietHours,
    /// Another container claimed an attempt that is not yet old enough to
    /// be written off.
    ClaimInFlight,
}

/// The next step for one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'a> {
    /// Sent or final: nothing to do (a redelivered message is harmless).
    Done,
    /// Come back at `until` (re-enqueued with that delay, capped at
    /// [`MAX_WAIT_SECONDS`]; a longer wait is re-enqueued again).
    Wait { until: DateTime<Utc>, why: WaitReason },
    /// A claim outlived [`DispatchSettings::claim_timeout`]: its container
    /// is gone. Record it as a transient failure with no outcome, then go on.
    WriteOff { attempt_id: String },
    /// The next route's channel is closed to this recipient (opted out or
    /// suppressed): record it skipped, then go on with the next channel.
    Skip { channel: Channel, reason: SkipReason },
    /// Claim this route, then call its provider.
    Send { channel: Channel, provider: &'a str },
    /// Every route is exhausted: the notification fails.
    Exhausted,
}

/// Decides the next step. `routes` are the configured (channel, provider)
/// pairs in failover order; `gate` is what the recipient's preferences and
/// the clinic's suppressions allow ([`Gate::open`] when not read yet): its
/// quiet hours and time zone override the clinic's and the request's.
pub fn next_step<'a>(
    n: &Notification,
    now: DateTime<Utc>,
    routes: &'a [(Channel, &'a str)],
    settings: &DispatchSettings,
    gate: &Gate,
) -> Step<'a> {
    if n.status.rank() >= Status::Sent.rank() {
        return Step::Done;
    }
    if let Some(due) = n.send_at.filter(|at| *at > now + Duration::seconds(1)) {
        return Step::Wait { until: due, why: WaitReason::SendAt };
    }
    let timezone = gate.timezone.as_deref().or(n.timezone.as_deref());
    let hours = gate.quiet_hours.unwrap_or(settings.quiet_hours);
    if let Some(due) = quiet_until(now, timezone, n.priority, hours) {
        return Step::Wait { until: due, why: WaitReason::QuietHours };
    }
    if let Some(claim) = n.attempts.last().filter(|a| a.status == Status::Sending) {
        let judged_at = claim.at + settings.claim_timeout;
        if now < judged_at {
            // One second past the timeout, so the claim is stale when it comes back.
            return Step::Wait { until: judged_at + Duration::seconds(1), why: WaitReason::ClaimInFlight };
        }
        return Step::WriteOff { attempt_id: claim.attempt_id.clone() };
    }
    match next_route(&n.channels, &n.attempts, routes, settings.max_tries) {
        Some((channel, provider)) => match gate.closed(channel) {
            Some(reason) => Step::Skip { channel, reason },
            None => Step::Send { channel, provider },
        },
        None => Step::Exhausted,
    }
}

/// The delay of a wait, in whole seconds for the queue: at least 1, at most
/// [`MAX_WAIT_SECONDS`].
pub fn wait_seconds(until: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let ms = (until - now).num_milliseconds().max(0);
    ((ms + 999) / 1000).clamp(1, MAX_WAIT_SECONDS)
}

/// When the sweep should look at a notification that is expected to change
/// by `expected` and has not: `expected` plus [`RECONCILE_SLACK_SECONDS`].
pub fn reconcile_at(expected: DateTime<Utc>) -> DateTime<Utc> {
    expected + Duration::seconds(RECONCILE_SLACK_SECONDS)
}

/// Whether the sweep should put the notification back on the queue now:
/// not yet sent, and its reconcile time has passed.
pub fn overdue(n: &Notification, now: DateTime<Utc>) -> bool {
    n.status.rank() < Status::Sent.rank() && n.reconcile_at.is_some_and(|at| at <= now)
}

/// After a failed attempt on (`channel`, `provider`) whose outcome was
/// `outcome`: how long to wait before trying that route again, or `None`
/// to go on at once (sent, a permanent failure, or the route's tries used
/// up: the next route). `jitter` is drawn by the caller from `0..=retry_base`.
pub fn retry_delay(
    outcome: &SendOutcome,
    before: &Notification,
    channel: Channel,
    provider: &str,
    settings: &DispatchSettings,
    jitter: std::time::Duration,
) -> Option<std::time::Duration> {
    let SendOutcome::Transient { retry_after, .. } = outcome else { return None };
    let tries = failures(&before.attempts, channel, provider) + 1;
    let cap = std::time::Duration::from_secs(MAX_WAIT_SECONDS as u64);
    (tries < settings.max_tries).then(|| backoff(settings.retry_base, tries, *retry_after, jitter, cap))
}
