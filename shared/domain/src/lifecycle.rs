//! What dispatch does next with a notification, and when a notification
//! that has not moved on is overdue: pure functions of (notification, now,
//! routes, settings), no AWS and no clock of their own.
//!
//! The one rule the crash tests hold it to: waiting for an attempt that
//! another container claimed is a [`Step::Wait`] until the claim can be
//! judged — never a failure that spends the queue's receive budget.

use chrono::{DateTime, Duration, Utc};

use crate::clinic::QuietHours;
use crate::notification::{Channel, Notification, Status, next_route, quiet_until};

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
    /// Claim this route, then call its provider.
    Send { channel: Channel, provider: &'a str },
    /// Every route is exhausted: the notification fails.
    Exhausted,
}

/// Decides the next step. `routes` are the configured (channel, provider)
/// pairs in failover order.
pub fn next_step<'a>(
    n: &Notification,
    now: DateTime<Utc>,
    routes: &'a [(Channel, &'a str)],
    settings: &DispatchSettings,
) -> Step<'a> {
    if n.status.rank() >= Status::Sent.rank() {
        return Step::Done;
    }
    if let Some(due) = n.send_at.filter(|at| *at > now + Duration::seconds(1)) {
        return Step::Wait { until: due, why: WaitReason::SendAt };
    }
    if let Some(due) = quiet_until(now, n.timezone.as_deref(), n.priority, settings.quiet_hours) {
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
        Some((channel, provider)) => Step::Send { channel, provider },
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

/// How the claim timeout, the function's timeout and the dispatch queue's
/// visibility timeout and redrive must relate, so that no setting can write
/// off live work or dead-letter a notification that is only waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBudget {
    pub claim_timeout_seconds: i64,
    pub function_timeout_seconds: i64,
    pub visibility_timeout_seconds: i64,
    /// The queue's redrive `maxReceiveCount`; `None` when it has no DLQ.
    pub max_receive_count: Option<i64>,
}

/// Margin between the function's timeout and the claim timeout: a claim is
/// written off only once the invocation that made it has surely ended.
pub const CLAIM_MARGIN_SECONDS: i64 = 5;

/// Receives a message may spend on crashes and unexpected errors before the
/// queue dead-letters it; waits spend none.
pub const MIN_RECEIVES: i64 = 3;

impl TimeBudget {
    /// Every rule that does not hold, in words an operator can act on.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let TimeBudget { claim_timeout_seconds: claim, function_timeout_seconds: function, .. } = *self;
        if claim < function + CLAIM_MARGIN_SECONDS {
            out.push(format!(
                "ClaimTimeoutSeconds ({claim}) must be at least the dispatch function's timeout ({function}) plus \
                 {CLAIM_MARGIN_SECONDS}: a claim must not be written off while its invocation may still be sending"
            ));
        }
        if claim + 1 > MAX_WAIT_SECONDS {
            out.push(format!(
                "ClaimTimeoutSeconds ({claim}) must be below {MAX_WAIT_SECONDS}: a wait for a claim is one queue delay"
            ));
        }
        if self.visibility_timeout_seconds < function {
            out.push(format!(
                "the dispatch queue's VisibilityTimeout ({}) must be at least the dispatch function's timeout \
                 ({function}): a message must not reach a second container while the first still works on it",
                self.visibility_timeout_seconds
            ));
        }
        match self.max_receive_count {
            None => out.push("the dispatch queue has no redrive policy: a poison message would cycle for ever".into()),
            Some(n) if n < MIN_RECEIVES => out.push(format!(
                "the dispatch queue's maxReceiveCount ({n}) must be at least {MIN_RECEIVES}: one crash spends a \
                 receive of every message in its batch"
            )),
            Some(_) => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{Attempt, MaskedRecipient, Priority};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn notification(status: Status) -> Notification {
        Notification {
            notification_id: "ntf-1".into(),
            clinic_id: "c-1".into(),
            status,
            channels: vec![Channel::Sms, Channel::Email],
            priority: Priority::High,
            send_at: None,
            created_at: at("2026-12-01T10:00:00Z"),
            updated_at: at("2026-12-01T10:00:00Z"),
            channel: None,
            provider: None,
            attempts: Vec::new(),
            recipient: MaskedRecipient::default(),
            timezone: None,
            sealed_recipient: String::new(),
            sealed_messages: String::new(),
            delivery: Default::default(),
            awaiting_receipt_since: None,
            reconcile_at: None,
        }
    }

    fn attempt(provider: &str, status: Status, when: &str, permanent: bool) -> Attempt {
        Attempt {
            attempt_id: format!("att-{provider}-{when}"),
            channel: if provider == "ses" { Channel::Email } else { Channel::Sms },
            provider: provider.into(),
            status,
            at: at(when),
            error: None,
            provider_message_id: None,
            permanent,
        }
    }

    const ROUTES: &[(Channel, &str)] = &[(Channel::Sms, "gateway"), (Channel::Sms, "twilio"), (Channel::Email, "ses")];

    fn settings() -> DispatchSettings {
        DispatchSettings { claim_timeout: Duration::seconds(120), max_tries: 2, quiet_hours: QuietHours::NONE }
    }

    #[test]
    fn a_young_claim_is_a_wait_until_it_can_be_judged_and_an_old_one_is_written_off() {
        let mut n = notification(Status::Sending);
        n.attempts.push(attempt("gateway", Status::Sending, "2026-12-01T10:00:00Z", false));
        let now = at("2026-12-01T10:00:30Z");
        assert_eq!(
            next_step(&n, now, ROUTES, &settings()),
            Step::Wait { until: at("2026-12-01T10:02:01Z"), why: WaitReason::ClaimInFlight }
        );
        assert_eq!(wait_seconds(at("2026-12-01T10:02:01Z"), now), 91);
        // The message that comes back then finds it stale.
        assert_eq!(
            next_step(&n, at("2026-12-01T10:02:01Z"), ROUTES, &settings()),
            Step::WriteOff { attempt_id: "att-gateway-2026-12-01T10:00:00Z".into() }
        );
    }

    #[test]
    fn routes_fail_over_by_provider_then_channel_and_end_exhausted() {
        let mut n = notification(Status::Queued);
        let now = at("2026-12-01T10:05:00Z");
        assert_eq!(next_step(&n, now, ROUTES, &settings()), Step::Send { channel: Channel::Sms, provider: "gateway" });
        n.attempts.push(attempt("gateway", Status::Failed, "2026-12-01T10:00:00Z", false));
        assert_eq!(next_step(&n, now, ROUTES, &settings()), Step::Send { channel: Channel::Sms, provider: "gateway" });
        n.attempts.push(attempt("gateway", Status::Failed, "2026-12-01T10:01:00Z", false));
        assert_eq!(next_step(&n, now, ROUTES, &settings()), Step::Send { channel: Channel::Sms, provider: "twilio" });
        n.attempts.push(attempt("twilio", Status::Failed, "2026-12-01T10:02:00Z", true));
        assert_eq!(next_step(&n, now, ROUTES, &settings()), Step::Send { channel: Channel::Email, provider: "ses" });
        n.attempts.push(attempt("ses", Status::Failed, "2026-12-01T10:03:00Z", true));
        assert_eq!(next_step(&n, now, ROUTES, &settings()), Step::Exhausted);
    }

    #[test]
    fn sent_and_final_notifications_are_done_whatever_comes_again() {
        for status in [Status::Sent, Status::Delivered, Status::Undelivered, Status::Failed, Status::Expired] {
            let mut n = notification(status);
            n.attempts.push(attempt("gateway", Status::Sending, "2026-12-01T10:00:00Z", false));
            assert_eq!(next_step(&n, at("2026-12-01T10:00:01Z"), ROUTES, &settings()), Step::Done, "{status:?}");
            n.reconcile_at = Some(at("2026-12-01T09:00:00Z"));
            assert!(!overdue(&n, at("2026-12-01T12:00:00Z")));
        }
    }

    #[test]
    fn send_at_and_quiet_hours_wait_before_any_claim_is_judged() {
        let mut n = notification(Status::Queued);
        n.send_at = Some(at("2026-12-01T12:00:00Z"));
        let now = at("2026-12-01T10:00:00Z");
        assert_eq!(
            next_step(&n, now, ROUTES, &settings()),
            Step::Wait { until: at("2026-12-01T12:00:00Z"), why: WaitReason::SendAt }
        );
        assert_eq!(wait_seconds(at("2026-12-01T12:00:00Z"), now), MAX_WAIT_SECONDS);
        n.send_at = None;
        n.priority = Priority::Normal;
        n.timezone = Some("UTC".into());
        let quiet = DispatchSettings { quiet_hours: "21-7".parse().unwrap(), ..settings() };
        assert!(matches!(
            next_step(&n, at("2026-12-01T23:00:00Z"), ROUTES, &quiet),
            Step::Wait { why: WaitReason::QuietHours, .. }
        ));
    }

    #[test]
    fn overdue_only_past_its_reconcile_time() {
        let mut n = notification(Status::Sending);
        assert!(!overdue(&n, at("2026-12-01T12:00:00Z")), "no reconcile time: nothing expected");
        n.reconcile_at = Some(reconcile_at(at("2026-12-01T10:02:00Z")));
        assert!(!overdue(&n, at("2026-12-01T10:06:59Z")));
        assert!(overdue(&n, at("2026-12-01T10:07:00Z")));
    }

    #[test]
    fn the_time_budget_names_every_setting_that_could_lose_work() {
        let good = TimeBudget {
            claim_timeout_seconds: 120,
            function_timeout_seconds: 30,
            visibility_timeout_seconds: 60,
            max_receive_count: Some(5),
        };
        assert!(good.problems().is_empty(), "{:?}", good.problems());
        let short_claim = TimeBudget { claim_timeout_seconds: 30, ..good };
        assert!(short_claim.problems()[0].contains("ClaimTimeoutSeconds (30)"));
        let long_claim = TimeBudget { claim_timeout_seconds: 900, ..good };
        assert!(long_claim.problems()[0].contains("below 900"));
        let short_visibility = TimeBudget { visibility_timeout_seconds: 20, ..good };
        assert!(short_visibility.problems()[0].contains("VisibilityTimeout (20)"));
        let few = TimeBudget { max_receive_count: Some(2), ..good };
        assert!(few.problems()[0].contains("maxReceiveCount (2)"));
        let none = TimeBudget { max_receive_count: None, ..good };
        assert!(none.problems()[0].contains("no redrive"));
    }
}
