//! The decision: what comes next for a notification.

use super::test_support::*;
use super::*;
use crate::notification::Priority;

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
