//! Recurring schedules and the due index (issue 18) through the local
//! gateway: each occurrence fires exactly once even with overlapping
//! scheduler runs, pause/resume/delete, catch-up and skips, bad input, and
//! a notification 7 days ahead that waits in the index, not the queue.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vcare_tests::TestStack;
use vcare_tests::comms::{PHONE, Providers, sms_to};

const SCHEDULES: &str = "/v1/communication/schedules";
const WAIT: Duration = Duration::from_secs(30);

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Twice a day in Kabul (08:00 and 20:00, 03:30Z and 15:30Z), from a day
/// in the future.
fn medication(start: &str) -> Value {
    json!({
        "recipient": {"userId": "u-pat", "phone": PHONE, "locale": "en"},
        "channels": ["sms"], "template": "medication", "variables": {"drug": "metformin"},
        "rrule": "FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0", "timezone": "Asia/Kabul", "start": start,
    })
}

async fn create(stack: &TestStack, token: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = stack.http.post(format!("{}{SCHEDULES}", stack.base)).bearer_auth(token).json(body);
    if let Some(k) = key {
        request = request.header("idempotency-key", k);
    }
    let (status, _, out) = stack.send(request).await;
    (status, out)
}

async fn save_medication_template(stack: &TestStack) {
    let admin = stack.token("u-admin", Some("c1"), &["clinic-admin"]);
    let body = json!({"category": "medication-reminders", "variables": ["drug"],
        "locales": {"en": {"sms": "{{ clinic }}: time for your {{ drug }}. STOP to opt out."}}});
    let url = format!("{}/v1/communication/templates/medication", stack.base);
    let (status, _, out) = stack.send(stack.http.put(url).bearer_auth(&admin).json(&body)).await;
    assert_eq!(status, 201, "{out}");
}

async fn scheduler(stack: &TestStack) -> std::sync::Arc<reminder_scheduler::Scheduler> {
    let env = stack.gateway.function("ReminderSchedulerFunction").unwrap().def.environment.clone();
    reminder_scheduler::scheduler(&vcare_runtime::Env::from_map(env), &stack.sdk).await.unwrap()
}

async fn texts_reach(p: &Providers, n: usize) -> Vec<String> {
    vcare_tests::eventually(WAIT, &format!("{n} SMS"), || async {
        let texts = sms_to(&p.gateway.requests(), PHONE);
        (texts.len() >= n).then_some(texts)
    })
    .await
}

#[tokio::test]
async fn each_occurrence_fires_once_through_overlapping_runs_and_pause_resume_delete_hold() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    save_medication_template(&stack).await;
    let nurse = stack.token("u-nurse", Some("c1"), &["nurse"]);
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT00:00:00+04:30").to_string();
    let (status, created) = create(&stack, &nurse, Some("s-1"), &medication(&tomorrow)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["scheduleId"].as_str().unwrap().to_owned();
    let next: Vec<DateTime<Utc>> =
        created["nextOccurrences"].as_array().unwrap().iter().map(|t| at(t.as_str().unwrap())).collect();
    assert_eq!(next.len(), 5, "{created}");
    assert!(next.iter().all(|t| t.format("%H:%M").to_string() == "03:30" || t.format("%H:%M").to_string() == "15:30"));
    assert_eq!(next[1] - next[0], chrono::Duration::hours(12));
    // The same key and body: the same schedule; another body: 409.
    let (status, again) = create(&stack, &nurse, Some("s-1"), &medication(&tomorrow)).await;
    assert_eq!((status, again["scheduleId"].clone()), (201, json!(id)));
    let mut other = medication(&tomorrow);
    other["variables"]["drug"] = json!("insulin");
    assert_eq!(create(&stack, &nurse, Some("s-1"), &other).await.0, 409);

    let s = scheduler(&stack).await;
    let early = s.run(next[0] - chrono::Duration::seconds(30)).await.unwrap();
    assert_eq!(early.fired, 0, "not yet: {early:?}");
    // Two runs at once, twice: each occurrence is one notification.
    for (i, occurrence) in next[..2].iter().enumerate() {
        let t = *occurrence + chrono::Duration::seconds(5);
        let (a, b) = tokio::join!(s.run(t), s.run(t));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.fired + b.fired >= 1, "{a:?} {b:?}");
        let texts = texts_reach(&p, i + 1).await;
        assert_eq!(texts[i], "c1: time for your metformin. STOP to opt out.");
        let retry = s.run(t).await.unwrap();
        assert_eq!(retry.fired, 0, "{retry:?}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sms_to(&p.gateway.requests(), PHONE).len(), 2, "exactly once each");
    let (status, _, shown) = stack.get(&format!("{SCHEDULES}/{id}"), Some(&nurse)).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!((shown["firedCount"].clone(), shown["lastFiredAt"].as_str().map(at)), (json!(2), Some(next[1])));
    assert_eq!(shown["nextOccurrences"].as_array().unwrap().len(), 10);
    assert_eq!(at(shown["nextOccurrences"][0].as_str().unwrap()), next[2]);

    // Paused over the third: nothing; resumed after it: not replayed.
    let patch = |status: &str| {
        let url = format!("{}{SCHEDULES}/{id}", stack.base);
        stack.send(stack.http.patch(url).bearer_auth(&nurse).json(&json!({"status": status})))
    };
    let (status, _, paused) = patch("paused").await;
    assert_eq!(
        (status, paused["status"].clone(), paused["nextOccurrences"].clone()),
        (200, json!("paused"), json!([]))
    );
    assert_eq!(s.run(next[2] + chrono::Duration::seconds(5)).await.unwrap().fired, 0);
    let (status, _, resumed) = patch("active").await;
    assert_eq!((status, resumed["status"].clone()), (200, json!("active")));
    assert_eq!(patch("ended").await.0, 400);
    let (status, _, listed) = stack.get(&format!("{SCHEDULES}?userId=u-pat"), Some(&nurse)).await;
    assert_eq!((status, listed["items"].as_array().map(Vec::len)), (200, Some(1)), "{listed}");

    // Deleted: nothing fires, and it is gone.
    let url = format!("{}{SCHEDULES}/{id}", stack.base);
    assert_eq!(stack.send(stack.http.delete(&url).bearer_auth(&nurse)).await.0, 204);
    assert_eq!(stack.send(stack.http.delete(&url).bearer_auth(&nurse)).await.0, 404);
    let after = s.run(next[4] + chrono::Duration::seconds(5)).await.unwrap();
    assert_eq!((after.fired, after.entries), (0, 0), "{after:?}");
    assert_eq!(stack.get(&format!("{SCHEDULES}/{id}"), Some(&nurse)).await.0, 404);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sms_to(&p.gateway.requests(), PHONE).len(), 2);
    stack.stop().await;
}

#[tokio::test]
async fn a_missed_run_catches_up_within_the_window_and_skips_older_occurrences_counted() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    save_medication_template(&stack).await;
    let svc = stack.token("svc", Some("c1"), &["service"]);
    let mut body = medication(&(Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT00:00:00+04:30").to_string());
    // Every 30 minutes: a 60-minute catch-up holds two.
    body["rrule"] = json!("FREQ=HOURLY;BYMINUTE=0,30");
    let (status, created) = create(&stack, &svc, Some("s-late"), &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["scheduleId"].as_str().unwrap().to_owned();
    let first = at(created["nextOccurrences"][0].as_str().unwrap());
    let skipped_before = vcare_runtime::metrics::counted("ScheduleOccurrencesSkipped", &[]);
    // The scheduler was down for 3 h 10 min: the first 5 occurrences are
    // older than the catch-up and skipped; the last two within it fire.
    let s = scheduler(&stack).await;
    let back = first + chrono::Duration::minutes(190);
    let run = s.run(back).await.unwrap();
    assert_eq!((run.skipped, run.fired), (5, 2), "{run:?}");
    assert_eq!(vcare_runtime::metrics::counted("ScheduleOccurrencesSkipped", &[]) - skipped_before, 5);
    texts_reach(&p, 2).await;
    let (_, _, shown) = stack.get(&format!("{SCHEDULES}/{id}"), Some(&svc)).await;
    assert_eq!((shown["skippedCount"].clone(), shown["firedCount"].clone()), (json!(5), json!(2)), "{shown}");
    assert_eq!(at(shown["nextOccurrences"][0].as_str().unwrap()), first + chrono::Duration::minutes(210));
    stack.stop().await;
}

#[tokio::test]
async fn bad_schedules_are_4xx_and_nothing_is_stored() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    save_medication_template(&stack).await;
    let svc = stack.token("svc", Some("c1"), &["service"]);
    let start = (Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let with = |k: &str, v: Value| {
        let mut b = medication(&start);
        b[k] = v;
        b
    };
    let began = std::time::Instant::now();
    for (i, (body, status)) in [
        (with("rrule", json!("FREQ=DAILY;BYHOUR=8;BYHOUR")), 400),
        (with("rrule", json!("FREQ=DAILY;BYSECOND=5")), 400),
        (with("rrule", json!("FREQ=MINUTELY;INTERVAL=20")), 400),
        (with("rrule", json!("FREQ=HOURLY;BYMINUTE=0,5")), 400),
        (with("rrule", json!("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30")), 422),
        (with("timezone", json!("Mars/Olympus")), 400),
        (with("until", json!((Utc::now() + chrono::Duration::hours(1)).to_rfc3339())), 400),
        (with("start", json!("tomorrow")), 400),
        // A start long past would be walked from, occurrence by occurrence (it took the
        // function's whole 10 s and answered 500 after storing it).
        (with("start", json!("1900-01-01T00:00:00Z")), 400),
        (with("start", json!("0001-01-01T00:00:00Z")), 400),
        (with("start", json!((Utc::now() - chrono::Duration::days(400)).to_rfc3339())), 400),
        (with("rrule", json!("FREQ=DAILY;BYHOUR=")), 400),
        (with("rrule", json!("FREQ=DAILY;BYHOUR=8,,9")), 400),
        (with("variables", json!({})), 422),
        (with("template", json!("no-such-template")), 422),
        (with("channels", json!(["push"])), 422),
        (with("extra", json!(1)), 400),
    ]
    .into_iter()
    .enumerate()
    {
        let (got, out) = create(&stack, &svc, Some(&format!("bad-{i}")), &body).await;
        assert_eq!((got, out["status"].clone()), (status, json!(status)), "{body}: {out}");
    }
    // Every refusal is cheap: a walk from 1900 alone took seconds.
    assert!(began.elapsed() < std::time::Duration::from_secs(8), "{:?}", began.elapsed());
    assert_eq!(create(&stack, &svc, None, &medication(&start)).await.0, 400, "Idempotency-Key is required");
    let patient = stack.token("u-pat", Some("c1"), &["patient"]);
    assert_eq!(create(&stack, &patient, Some("p-1"), &medication(&start)).await.0, 403);
    let (status, _, listed) = stack.get(&format!("{SCHEDULES}?userId=u-pat"), Some(&svc)).await;
    assert_eq!((status, listed["items"].clone()), (200, json!([])), "nothing was stored");
    let due = s_entries(&stack).await;
    assert_eq!(due, 0, "and nothing waits in the due index");
    stack.stop().await;
}

/// Due entries in the table (a scan: only tests look at everything).
async fn s_entries(stack: &TestStack) -> usize {
    let db = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.function("ReminderSchedulerFunction").unwrap().def.environment["TABLE_NAME"].clone();
    let items = db.scan().table_name(table).send().await.unwrap().items.unwrap_or_default();
    items.iter().filter(|i| i.get("kind").and_then(|k| k.as_s().ok()).is_some_and(|k| k == "due")).count()
}

/// A notification 7 days ahead waits in the due index: no queue message
/// until the scheduler releases it, then one, and it is sent on time.
#[tokio::test]
async fn a_send_at_seven_days_ahead_waits_in_the_index_and_is_sent_on_time_with_one_queue_message() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::quiet_stack(&p, "gateway", "ses").await;
    let send_at = (Utc::now() + chrono::Duration::days(7)).duration_round_minute();
    let mut body = vcare_tests::comms::body(&["sms"], "normal");
    body["sendAt"] = json!(send_at.to_rfc3339());
    let id = vcare_tests::comms::accept(&stack, &body, "week-ahead").await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let queue = stack.gateway.function("DispatchFunction").unwrap().def.environment["DISPATCH_QUEUE_URL"].clone();
    let on_queue = || async {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let got = sqs
            .get_queue_attributes()
            .queue_url(&queue)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesDelayed)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        got.attributes.unwrap().values().map(|v| v.parse::<usize>().unwrap()).sum::<usize>()
    };
    assert_eq!(on_queue().await, 0, "accepted, not queued");
    assert_eq!(s_entries(&stack).await, 1, "it waits in the due index");
    let s = scheduler(&stack).await;
    // Every minute of the week the scheduler runs; a run reads only what is due.
    let before = s.run(send_at - chrono::Duration::minutes(10)).await.unwrap();
    assert_eq!((before.released, on_queue().await), (0, 0), "{before:?}");
    let due = s.run(send_at + chrono::Duration::seconds(1)).await.unwrap();
    assert_eq!(due.released, 1, "{due:?}");
    assert_eq!(s.run(send_at + chrono::Duration::seconds(2)).await.unwrap().released, 0, "released once");
    assert_eq!(on_queue().await, 1, "one queue message in seven days");
    let got = sqs.receive_message().queue_url(&queue).wait_time_seconds(2).send().await.unwrap();
    let message = got.messages.unwrap_or_default().pop().expect("the released message");
    let m: vcare_comms::DispatchMessage = serde_json::from_str(message.body().unwrap()).unwrap();
    assert_eq!(m.notification_id, id);
    // Dispatched on a clock that says it is then: sent.
    let env = vcare_runtime::Env::from_map(stack.gateway.function("DispatchFunction").unwrap().def.environment.clone());
    let clock = vcare_runtime::Clock::shifted(send_at + chrono::Duration::seconds(3) - Utc::now());
    let dispatcher = vcare_comms::dispatch::dispatcher(&env, &stack.sdk, clock).await.unwrap();
    assert_eq!(format!("{:?}", dispatcher.handle(&m).await), "Ok(Sent)");
    assert_eq!(p.gateway.requests().len(), 1);
    assert_eq!(s_entries(&stack).await, 0, "nothing left waiting");
    stack.stop().await;
}

trait RoundMinute {
    fn duration_round_minute(self) -> Self;
}

impl RoundMinute for DateTime<Utc> {
    fn duration_round_minute(self) -> Self {
        use chrono::DurationRound;
        self.duration_trunc(chrono::Duration::minutes(1)).unwrap()
    }
}

/// Daylight-saving days as the API answers them (RFC 5545 3.3.5): in New
/// York on 2027-03-14, 02:30 does not exist and falls at the offset before
/// the gap (07:30Z); in Berlin on 2027-10-31, 02:30 happens twice and fires
/// once, at its first instant (00:30Z); Kabul has neither.
#[tokio::test]
async fn daylight_saving_days_are_answered_as_rfc_5545_says() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    save_medication_template(&stack).await;
    let svc = stack.token("svc", Some("c1"), &["service"]);
    for (i, (tz, start, expected)) in [
        (
            "America/New_York",
            "2027-03-13T02:30:00-05:00",
            ["2027-03-13T07:30:00Z", "2027-03-14T07:30:00Z", "2027-03-15T06:30:00Z"],
        ),
        (
            "Europe/Berlin",
            "2027-10-30T02:30:00+02:00",
            ["2027-10-30T00:30:00Z", "2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"],
        ),
        (
            "Asia/Kabul",
            "2027-03-13T02:30:00+04:30",
            ["2027-03-12T22:00:00Z", "2027-03-13T22:00:00Z", "2027-03-14T22:00:00Z"],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = medication(start);
        body["rrule"] = json!("FREQ=DAILY");
        body["timezone"] = json!(tz);
        let (status, created) = create(&stack, &svc, Some(&format!("dst-{i}")), &body).await;
        assert_eq!(status, 201, "{tz}: {created}");
        let got: Vec<DateTime<Utc>> =
            created["nextOccurrences"].as_array().unwrap()[..3].iter().map(|t| at(t.as_str().unwrap())).collect();
        let want: Vec<DateTime<Utc>> = expected.iter().map(|t| at(t)).collect();
        assert_eq!(got, want, "{tz}");
    }
    stack.stop().await;
}

/// A run that died after the occurrence's notification was accepted but
/// before the schedule moved on: the next run makes the same request under
/// the same key (the first notification stands), moves the schedule, and
/// the patient gets one message.
#[tokio::test]
async fn a_run_that_died_between_accept_and_advance_is_finished_by_the_next_without_a_second_message() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    save_medication_template(&stack).await;
    let svc = stack.token("svc", Some("c1"), &["service"]);
    // Starting within the hour, so that the first occurrence (08:00 or 20:00
    // in Kabul) is less than a day after the dead run's notification: its
    // Idempotency-Key is remembered for 24 hours (IDEMPOTENCY_HOURS), and a
    // start "tomorrow" made this test fail whenever the first occurrence
    // fell more than 24 hours after now (00:00-03:30 UTC).
    let start = (Utc::now() + chrono::Duration::minutes(30))
        .with_timezone(&chrono::FixedOffset::east_opt(4 * 3600 + 1800).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let (status, created) = create(&stack, &svc, Some("s-crash"), &medication(&start)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["scheduleId"].as_str().unwrap();
    let first = at(created["nextOccurrences"][0].as_str().unwrap());
    assert!(first - Utc::now() < chrono::Duration::hours(13), "within the key's memory: {first}");
    // What the dead run had done: the occurrence's notification, under its key.
    let key = format!("schedule:{id}:{}", first.format("%Y-%m-%dT%H:%M:%SZ"));
    let mut body = medication(&start);
    for k in ["rrule", "timezone", "start"] {
        body.as_object_mut().unwrap().remove(k);
    }
    body["category"] = json!("medication-reminders");
    let (status, _, accepted) = vcare_tests::comms::post_notification(&stack, &svc, Some(&key), &body).await;
    assert_eq!(status, 202, "{accepted}");
    texts_reach(&p, 1).await;
    let run = scheduler(&stack).await.run(first + chrono::Duration::seconds(5)).await.unwrap();
    assert_eq!(run.fired, 1, "{run:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sms_to(&p.gateway.requests(), PHONE).len(), 1, "one message");
    let (_, _, shown) = stack.get(&format!("{SCHEDULES}/{id}"), Some(&svc)).await;
    assert_eq!(shown["firedCount"], 1, "{shown}");
    assert_eq!(at(shown["nextOccurrences"][0].as_str().unwrap()), first + chrono::Duration::hours(12));
    stack.stop().await;
}
