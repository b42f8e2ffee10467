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
        next_step(&n, now, ROUTES, &settings(), &Gate::open()),
        Step::Wait { until: at("2026-12-01T10:02:01Z"), why: WaitReason::ClaimInFlight }
    );
    assert_eq!(wait_seconds(at("2026-12-01T10:02:01Z"), now), 91);
    // The message that comes back then finds it stale.
    assert_eq!(
        next_step(&n, at("2026-12-01T10:02:01Z"), ROUTES, &settings(), &Gate::open()),
        Step::WriteOff { attempt_id: "att-gateway-2026-12-01T10:00:00Z".into() }
    );
}

#[test]
fn routes_fail_over_by_provider_then_channel_and_end_exhausted() {
    let mut n = notification(Status::Queued);
    let now = at("2026-12-01T10:05:00Z");
    assert_eq!(
        next_step(&n, now, ROUTES, &settings(), &Gate::open()),
        Step::Send { channel: Channel::Sms, provider: "gateway" }
    );
    n.attempts.push(attempt("gateway", Status::Failed, "2026-12-01T10:00:00Z", false));
    assert_eq!(
        next_step(&n, now, ROUTES, &settings(), &Gate::open()),
        Step::Send { channel: Channel::Sms, provider: "gateway" }
    );
    n.attempts.push(attempt("gateway", Status::Failed, "2026-12-01T10:01:00Z", false));
    assert_eq!(
        next_step(&n, now, ROUTES, &settings(), &Gate::open()),
        Step::Send { channel: Channel::Sms, provider: "twilio" }
    );
    n.attempts.push(attempt("twilio", Status::Failed, "2026-12-01T10:02:00Z", true));
    assert_eq!(
        next_step(&n, now, ROUTES, &settings(), &Gate::open()),
        Step::Send { channel: Channel::Email, provider: "ses" }
    );
    n.attempts.push(attempt("ses", Status::Failed, "2026-12-01T10:03:00Z", true));
    assert_eq!(next_step(&n, now, ROUTES, &settings(), &Gate::open()), Step::Exhausted);
}

#[test]
fn sent_and_final_notifications_are_done_whatever_comes_again() {
    for status in [Status::Sent, Status::Delivered, Status::Undelivered, Status::Failed, Status::Expired] {
        let mut n = notification(status);
        n.attempts.push(attempt("gateway", Status::Sending, "2026-12-01T10:00:00Z", false));
        assert_eq!(
            next_step(&n, at("2026-12-01T10:00:01Z"), ROUTES, &settings(), &Gate::open()),
            Step::Done,
            "{status:?}"
        );
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
        next_step(&n, now, ROUTES, &settings(), &Gate::open()),
        Step::Wait { until: at("2026-12-01T12:00:00Z"), why: WaitReason::SendAt }
    );
    assert_eq!(wait_seconds(at("2026-12-01T12:00:00Z"), now), MAX_WAIT_SECONDS);
    n.send_at = None;
    n.priority = Priority::Normal;
    n.timezone = Some("UTC".into());
    let quiet = DispatchSettings { quiet_hours: "21-7".parse().unwrap(), ..settings() };
    assert!(matches!(
        next_step(&n, at("2026-12-01T23:00:00Z"), ROUTES, &quiet, &Gate::open()),
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

#[test]
fn a_closed_channel_is_skipped_and_the_next_channel_tried() {
    let now = at("2026-12-01T10:00:00Z");
    let n = notification(Status::Queued);
    let sms_off = crate::consent::Gate { closed: vec![(Channel::Sms, SkipReason::OptedOut)], ..Gate::open() };
    let step = next_step(&n, now, ROUTES, &settings(), &sms_off);
    assert_eq!(step, Step::Skip { channel: Channel::Sms, reason: SkipReason::OptedOut });
    let (n, events) = skip(&n, Channel::Sms, SkipReason::OptedOut, now).unwrap();
    assert!(events.is_empty());
    let a = n.attempts.last().unwrap();
    assert_eq!((a.status, a.error.as_deref(), a.ends_channel), (Status::Skipped, Some("opted-out"), true));
    // Not twice, and no provider of SMS is tried after it.
    assert_eq!(skip(&n, Channel::Sms, SkipReason::OptedOut, now), None);
    assert_eq!(
        next_step(&n, now, ROUTES, &settings(), &sms_off),
        Step::Send { channel: Channel::Email, provider: "ses" }
    );
    assert_eq!(
        next_step(&n, now, ROUTES, &settings(), &Gate::open()),
        Step::Send { channel: Channel::Email, provider: "ses" }
    );
}

#[test]
fn every_channel_closed_ends_suppressed_with_its_event_and_a_real_failure_stays_failed() {
    let now = at("2026-12-01T10:00:00Z");
    let all_off = crate::consent::Gate {
        closed: vec![(Channel::Sms, SkipReason::Suppressed), (Channel::Email, SkipReason::OptedOut)],
        ..Gate::open()
    };
    let mut n = notification(Status::Queued);
    loop {
        match next_step(&n, now, ROUTES, &settings(), &all_off) {
            Step::Skip { channel, reason } => n = skip(&n, channel, reason, now).unwrap().0,
            Step::Exhausted => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let (done, events) = fail(&n, now).unwrap();
    assert_eq!(done.status, Status::Suppressed);
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), ["communication.notification.suppressed"]);
    assert_eq!(next_step(&done, now, ROUTES, &settings(), &all_off), Step::Done);

    // SMS failed for real, e-mail opted out: that is a failure, not a suppression.
    let mut n = notification(Status::Queued);
    let mut refused = attempt("gateway", Status::Failed, "2026-12-01T10:00:00Z", true);
    refused.ends_channel = true;
    n.attempts.push(refused);
    let email_off = crate::consent::Gate { closed: vec![(Channel::Email, SkipReason::OptedOut)], ..Gate::open() };
    n = skip(&n, Channel::Email, SkipReason::OptedOut, now).unwrap().0;
    assert_eq!(next_step(&n, now, ROUTES, &settings(), &email_off), Step::Exhausted);
    assert_eq!(fail(&n, now).unwrap().0.status, Status::Failed);
}

#[test]
fn personal_quiet_hours_and_time_zone_override_the_clinics() {
    let mut n = notification(Status::Queued);
    n.priority = Priority::Normal;
    n.timezone = Some("UTC".into());
    // 23:00 UTC is 03:30 in Kabul: the clinic's 21-7 in UTC holds it, the
    // patient's own "off" lets it go.
    let mut quiet = settings();
    quiet.quiet_hours = QuietHours { start: 21, end: 7 };
    let now = at("2026-12-01T23:00:00Z");
    assert!(matches!(
        next_step(&n, now, ROUTES, &quiet, &Gate::open()),
        Step::Wait { why: WaitReason::QuietHours, .. }
    ));
    let off = Gate { quiet_hours: Some(QuietHours::NONE), ..Gate::open() };
    assert!(matches!(next_step(&n, now, ROUTES, &quiet, &off), Step::Send { .. }));
    // At 12:00 UTC the clinic lets it go; the patient's 16-18 in Kabul (16:30 there) holds it.
    let noon = at("2026-12-01T12:00:00Z");
    let own = Gate {
        quiet_hours: Some(QuietHours { start: 16, end: 18 }),
        timezone: Some("Asia/Kabul".into()),
        ..Gate::open()
    };
    assert!(matches!(next_step(&n, noon, ROUTES, &quiet, &own), Step::Wait { why: WaitReason::QuietHours, .. }));
}
