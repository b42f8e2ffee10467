//! The transitions, one by one and as whole runs: every order of provider
//! outcomes and crashes ends sent or failed, once, with no AWS at all.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use super::test_support::*;
use super::*;
use crate::events::{NOTIFICATION_FAILED, NOTIFICATION_SENT};

fn sent(id: &str) -> SendOutcome {
    SendOutcome::Sent { provider_message_id: id.into() }
}

fn transient() -> SendOutcome {
    SendOutcome::Transient { reason: "503".into(), retry_after: None }
}

fn permanent() -> SendOutcome {
    SendOutcome::Permanent { reason: "bad number".into() }
}

fn refused() -> SendOutcome {
    SendOutcome::Refused { reason: "unsubscribed".into(), suppress: true }
}

fn claimed(n: &Notification, attempt_id: &str, provider: &str, now: DateTime<Utc>) -> Notification {
    let c = Claim { attempt_id, channel: Channel::Sms, provider };
    claim(n, n, c, now, Duration::seconds(120)).unwrap().0
}

fn result<'a>(attempt_id: &'a str, outcome: &'a SendOutcome) -> AttemptResult<'a> {
    AttemptResult { attempt_id, outcome, receipts: true, cleaned: None, retry_at: None }
}

#[test]
fn a_claim_is_a_sending_attempt_on_the_state_it_was_decided_from_only() {
    let n = notification(Status::Queued);
    let now = at("2026-12-01T10:00:00Z");
    let c = claimed(&n, "att-1", "gateway", now);
    assert_eq!(c.status, Status::Sending);
    assert!(holds_claim(&c, "att-1"));
    assert_eq!(c.delivery["att-1"].provider.as_deref(), Some("gateway"));
    assert_eq!(c.reconcile_at, Some(at("2026-12-01T10:07:00Z")), "judged at +120 s, plus the slack");
    // A redelivered copy decided from the old state finds it moved on.
    let again = Claim { attempt_id: "att-2", channel: Channel::Sms, provider: "gateway" };
    assert_eq!(claim(&c, &n, again, now, Duration::seconds(120)), None);
}

#[test]
fn sent_is_recorded_once_with_its_event_and_a_receipt_that_came_first_stays() {
    let now = at("2026-12-01T10:00:00Z");
    let mut c = claimed(&notification(Status::Queued), "att-1", "gateway", now);
    c.delivery.insert("att-1".into(), crate::receipt::Delivery::new(Status::Delivered, now).by("gateway"));
    let ok = sent("m-1");
    let (after, events) = record(&c, &result("att-1", &ok), now).unwrap();
    assert_eq!(after.status, Status::Sent);
    assert_eq!(after.attempts[0].provider_message_id.as_deref(), Some("m-1"));
    assert_eq!(after.delivery["att-1"].status, Status::Delivered, "the receipt is not undone");
    assert_eq!(after.awaiting_receipt_since, None, "a final receipt is not awaited");
    assert_eq!(after.reconcile_at, None);
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [NOTIFICATION_SENT]);
    // The same outcome again (a redelivery): nothing to record.
    assert_eq!(record(&after, &result("att-1", &ok), now), None);
    assert_eq!(write_off(&after, "att-1", now), None);
}

#[test]
fn a_failure_keeps_its_reason_and_a_retry_says_when_the_sweep_should_look() {
    let now = at("2026-12-01T10:00:00Z");
    let c = claimed(&notification(Status::Queued), "att-1", "gateway", now);
    let later = at("2026-12-01T10:00:08Z");
    let t = transient();
    let r = AttemptResult { retry_at: Some(later), ..result("att-1", &t) };
    let (after, events) = record(&c, &r, now).unwrap();
    assert!(events.is_empty());
    assert_eq!((after.attempts[0].status, after.attempts[0].permanent), (Status::Failed, false));
    assert_eq!(after.attempts[0].error.as_deref(), Some("503"));
    assert_eq!(after.reconcile_at, Some(at("2026-12-01T10:05:08Z")));
    let p = permanent();
    let (after, _) = record(&c, &result("att-1", &p), now).unwrap();
    assert!(after.attempts[0].permanent);
    let (off, _) = write_off(&c, "att-1", now).unwrap();
    assert_eq!(off.attempts[0].error.as_deref(), Some(WRITTEN_OFF));
    assert!(!off.attempts[0].permanent, "a crash is worth another try");
}

#[test]
fn dropped_push_tokens_are_sealed_into_the_recipient() {
    let now = at("2026-12-01T10:00:00Z");
    let c = claimed(&notification(Status::Queued), "att-1", "fcm", now);
    let cleaned = CleanedRecipient { sealed: "sealed-2".into(), push_tokens: 1 };
    let ok = sent("m");
    let r = AttemptResult { cleaned: Some(&cleaned), receipts: false, ..result("att-1", &ok) };
    let (after, _) = record(&c, &r, now).unwrap();
    assert_eq!((after.sealed_recipient.as_str(), after.recipient.push_tokens), ("sealed-2", 1));
    assert_eq!(after.awaiting_receipt_since, None, "no receipts from this provider");
}

#[test]
fn fail_happens_once_and_never_after_sent() {
    let now = at("2026-12-01T10:00:00Z");
    let (failed, events) = fail(&notification(Status::Sending), now).unwrap();
    assert_eq!((failed.status, events[0].kind), (Status::Failed, NOTIFICATION_FAILED));
    assert_eq!(fail(&failed, now), None);
    assert_eq!(fail(&notification(Status::Sent), now), None, "sent by another container since the decision");
    let live = claimed(&notification(Status::Queued), "att-1", "gateway", now);
    assert_eq!(fail(&live, now), None, "claimed by another container since the decision");
}

#[test]
fn a_wait_moves_the_reconcile_time_once_and_never_for_a_sent_notification() {
    let now = at("2026-12-01T10:00:00Z");
    let until = at("2026-12-01T12:00:00Z");
    let (held, _) = hold(&notification(Status::Queued), until, now).unwrap();
    assert_eq!(held.reconcile_at, Some(at("2026-12-01T10:20:00Z")), "one queue delay, plus the slack");
    assert_eq!(hold(&held, until, now), None, "a second message of the same wait writes nothing");
    assert_eq!(hold(&notification(Status::Sent), until, now), None);
    assert_eq!(wait_end(until, now), at("2026-12-01T10:15:00Z"));
}

#[test]
fn backoff_doubles_keeps_retry_after_and_stops_at_the_queue_delay() {
    let s = StdDuration::from_secs;
    let cap = s(900);
    assert_eq!(backoff(s(2), 1, None, s(0), cap), s(2));
    assert_eq!(backoff(s(2), 3, None, s(1), cap), s(9));
    assert_eq!(backoff(s(2), 3, None, s(99), cap), s(10), "jitter is at most the base");
    assert_eq!(backoff(s(2), 1, Some(s(30)), s(0), cap), s(30));
    assert_eq!(backoff(s(2), 40, None, s(0), cap), s(512), "the exponent stops at 8");
    assert_eq!(backoff(s(10), 40, None, s(0), cap), cap);
    let n = notification(Status::Sending);
    let st = settings();
    assert_eq!(retry_delay(&transient(), &n, Channel::Sms, "gateway", &st, s(0)), Some(s(2)));
    assert_eq!(retry_delay(&permanent(), &n, Channel::Sms, "gateway", &st, s(0)), None);
    assert_eq!(retry_delay(&sent("m"), &n, Channel::Sms, "gateway", &st, s(0)), None);
    let mut tried = n.clone();
    tried.attempts.push(attempt("gateway", Status::Failed, "2026-12-01T10:00:00Z", false));
    assert_eq!(retry_delay(&transient(), &tried, Channel::Sms, "gateway", &st, s(0)), None, "its last try: fail over");
}

#[test]
fn a_push_to_several_tokens_is_sent_if_any_took_it() {
    let dead = SendOutcome::DeadToken { reason: "unregistered".into() };
    assert_eq!(combine("fcm", &[dead.clone(), transient(), sent("m")]), sent("m"));
    assert_eq!(combine("fcm", &[dead.clone(), transient()]), transient());
    assert!(
        matches!(combine("fcm", &[dead.clone(), dead.clone()]), SendOutcome::Permanent { reason } if reason.contains("every push token"))
    );
    assert_eq!(combine("fcm", &[dead, permanent()]), permanent());
}

/// What a provider does with one send in a scripted run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Sent,
    Transient,
    Permanent,
    /// The recipient is refused (opted out): the channel is over.
    Refused,
    /// The container dies after its claim.
    Crash,
}

struct Run {
    end: Notification,
    events: Vec<&'static str>,
    sends: Vec<String>,
}

/// Carries out each step as dispatch does, with provider answers from
/// `script` (then `Transient` for ever); every step is also tried a second
/// time from the state before it, as a redelivered message would.
fn run(script: &[Act]) -> Run {
    let st = settings();
    let mut now = at("2026-12-01T10:00:00Z");
    let mut n = notification(Status::Queued);
    let (mut events, mut sends) = (Vec::new(), Vec::new());
    let mut acts = script.iter().copied();
    let apply = |n: &mut Notification, change: Change, events: &mut Vec<&'static str>| {
        let (next, new) = change.expect("the step applies to the state it was decided from");
        events.extend(new.iter().map(|e| e.kind));
        *n = next;
    };
    for step in 0.. {
        assert!(step < 100, "a run ends");
        match next_step(&n, now, ROUTES, &st, &Gate::open()) {
            Step::Done => break,
            Step::Wait { until, why } => {
                assert_eq!(why, WaitReason::ClaimInFlight);
                now = until;
            }
            Step::WriteOff { attempt_id } => {
                let change = write_off(&n, &attempt_id, now);
                let before = n.clone();
                apply(&mut n, change, &mut events);
                assert_eq!(write_off(&n, &attempt_id, now), None, "a redelivered write-off is no change");
                assert_eq!(next_step(&before, now, ROUTES, &st, &Gate::open()), Step::WriteOff { attempt_id });
            }
            Step::Skip { channel, reason } => {
                let change = skip(&n, channel, reason, now);
                apply(&mut n, change, &mut events);
                assert_eq!(skip(&n, channel, reason, now), None, "a channel is skipped once");
            }
            Step::Exhausted => {
                let change = fail(&n, now);
                apply(&mut n, change, &mut events);
                assert_eq!(fail(&n, now), None);
            }
            Step::Send { channel, provider } => {
                let attempt_id = format!("att-{step}");
                let before = n.clone();
                let c = Claim { attempt_id: &attempt_id, channel, provider };
                apply(&mut n, claim(&before, &before, c, now, st.claim_timeout), &mut events);
                let c2 = Claim { attempt_id: "att-copy", channel, provider };
                assert_eq!(claim(&n, &before, c2, now, st.claim_timeout), None, "a copy cannot claim it again");
                sends.push(provider.to_owned());
                let outcome = match acts.next().unwrap_or(Act::Transient) {
                    Act::Crash => {
                        now += Duration::seconds(1);
                        continue;
                    }
                    Act::Sent => sent("m"),
                    Act::Transient => transient(),
                    Act::Permanent => permanent(),
                    Act::Refused => refused(),
                };
                let delay = retry_delay(&outcome, &n, channel, provider, &st, StdDuration::ZERO);
                let retry_at = delay.map(|d| now + Duration::from_std(d).unwrap());
                let r = AttemptResult {
                    attempt_id: &attempt_id,
                    outcome: &outcome,
                    receipts: true,
                    cleaned: None,
                    retry_at,
                };
                let change = record(&n, &r, now);
                apply(&mut n, change, &mut events);
                assert_eq!(record(&n, &r, now), None, "an outcome is recorded once");
                now = retry_at.unwrap_or(now + Duration::seconds(1));
            }
        }
    }
    Run { end: n, events, sends }
}

/// Every sequence of `len` acts.
fn scripts(len: usize) -> Vec<Vec<Act>> {
    let acts = [Act::Sent, Act::Transient, Act::Permanent, Act::Refused, Act::Crash];
    (0..acts.len().pow(len as u32))
        .map(|mut i| {
            (0..len)
                .map(|_| {
                    let a = acts[i % acts.len()];
                    i /= acts.len();
                    a
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_order_of_outcomes_ends_sent_or_failed_once_within_each_routes_tries() {
    let st = settings();
    let scripts = scripts(5);
    assert_eq!(scripts.len(), 3125);
    for script in scripts {
        let Run { end, events, sends } = run(&script);
        let why = format!("{script:?}: {events:?} over {sends:?}");
        match end.status {
            Status::Sent => assert_eq!(events, [NOTIFICATION_SENT], "{why}"),
            Status::Failed => assert_eq!(events, [NOTIFICATION_FAILED], "{why}"),
            other => panic!("{why}: ended {other:?}"),
        }
        // Sent exactly when a send took before the routes ran out.
        let first_sent = script.iter().position(|a| *a == Act::Sent);
        assert_eq!(end.status == Status::Sent, first_sent.is_some_and(|i| i < sends.len()), "{why}");
        assert!(end.attempts.iter().all(|a| a.status != Status::Sending), "no claim is left: {why}");
        for (channel, provider) in ROUTES {
            let tried: Vec<_> =
                end.attempts.iter().filter(|a| a.channel == *channel && a.provider == *provider).collect();
            let failed = tried.iter().filter(|a| a.status == Status::Failed).count();
            assert!(failed <= st.max_tries, "{provider} tried {failed} times: {why}");
            if let Some(p) = tried.iter().position(|a| a.permanent) {
                assert_eq!(p + 1, tried.len(), "{provider} refused for good and was tried again: {why}");
            }
            let on_channel: Vec<_> = end.attempts.iter().filter(|a| a.channel == *channel).collect();
            if let Some(p) = on_channel.iter().position(|a| a.ends_channel) {
                assert_eq!(p + 1, on_channel.len(), "the recipient was refused on {channel:?} and tried again: {why}");
            }
        }
        assert_eq!(end.reconcile_at, None, "{why}");
        assert_eq!(next_step(&end, at("2027-01-01T00:00:00Z"), ROUTES, &st, &Gate::open()), Step::Done, "{why}");
    }
}

#[test]
fn a_crash_is_waited_out_written_off_and_the_route_tried_again() {
    let Run { end, events, sends } = run(&[Act::Crash, Act::Sent]);
    assert_eq!(sends, ["gateway", "gateway"]);
    assert_eq!(end.attempts[0].error.as_deref(), Some(WRITTEN_OFF));
    assert_eq!(end.attempts[1].status, Status::Sent);
    assert_eq!(events, [NOTIFICATION_SENT]);
    let failover = run(&[Act::Permanent, Act::Transient, Act::Transient, Act::Sent]);
    assert_eq!(failover.sends, ["gateway", "twilio", "twilio", "ses"]);
    assert_eq!(failover.end.channel, Some(Channel::Email));
    // A refusal of the recipient skips the channel's other providers.
    let stop = run(&[Act::Refused, Act::Sent]);
    assert_eq!(stop.sends, ["gateway", "ses"]);
    assert!(stop.end.attempts[0].ends_channel && stop.end.attempts[0].permanent);
}
