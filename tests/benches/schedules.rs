//! Schedules, templates and far `sendAt`s (issue 18). `make bench ARGS="--bench schedules"`
//! (release, private loopback endpoint); under `cargo test`, a quick smoke run.
//!
//! 1. The scheduler's minute run with N active schedules of which 1 % are
//!    due that minute (N = 10,000 and 100,000): time and DynamoDB reads,
//!    which should follow the due 1 %, not N. The due ones are made through
//!    the service; the others are copies written straight into the table
//!    (a schedule item and its due entry days ahead: the scheduler never
//!    reads them, which is the point).
//! 2. Accept with a clinic template vs with a built-in: AWS calls per
//!    accept, time, and the template cache's hit rate.
//! 3. A notification with `sendAt` 7 days ahead: queue messages and AWS
//!    calls from accept until it is sent.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue as V, PutRequest, WriteRequest};
use chrono::{DurationRound, Utc};
use serde_json::json;
use vcare_tests::comms::{PHONE, Providers};
use vcare_tests::measure::{ms, stats};
use vcare_tests::proxy::CountingProxy;

fn schedule_body(start: &str) -> serde_json::Value {
    json!({
        "recipient": {"userId": "u-pat", "phone": PHONE, "locale": "en"},
        "channels": ["sms"], "template": "medication", "variables": {"drug": "metformin"},
        "rrule": "FREQ=DAILY", "timezone": "Asia/Kabul", "start": start,
    })
}

async fn save_template(comms: &vcare_comms::Notifications) {
    let draft: vcare_domain::templates::TemplateDraft = serde_json::from_value(json!({
        "category": "medication-reminders", "variables": ["drug"],
        "locales": {"en": {"sms": "{{ clinic }}: time for your {{ drug }}. STOP to opt out."}}
    }))
    .unwrap();
    comms.save_template("c1", "medication", draft, "bench", Utc::now()).await.unwrap();
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let p = Providers::start().await;
    let proxy = CountingProxy::start(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await;
    let sdk = vcare_tests::sdk_via(&proxy.url).await;
    let sizes: &[usize] = if bench { &[10_000, 100_000] } else { &[200, 1_000] };
    println!("scheduler minute run, 1 % of N schedules due, local AWS endpoint");
    for &n in sizes {
        scheduler_run(&p, &proxy, &sdk, n).await;
    }
    accept_with_templates(&p, &proxy, &sdk, if bench { 300 } else { 5 }).await;
    week_ahead(&p, &proxy, &sdk).await;
}

async fn scheduler_run(p: &Providers, proxy: &CountingProxy, sdk: &aws_config::SdkConfig, n: usize) {
    let stack = vcare_tests::comms::quiet_stack(p, "gateway", "ses").await;
    let env = |id: &str| vcare_runtime::Env::from_map(stack.gateway.function(id).unwrap().def.environment.clone());
    let comms = vcare_comms::Notifications::from_env(&env("SchedulesFunction"), sdk).unwrap();
    save_template(&comms).await;
    // The minute everything due falls in: ten minutes ahead, on the minute.
    let minute = (Utc::now() + chrono::Duration::minutes(10)).duration_trunc(chrono::Duration::minutes(1)).unwrap();
    let due = n / 100;
    let t = Instant::now();
    let mut model_id = String::new();
    for i in 0..due {
        let body = serde_json::from_value(schedule_body(&minute.to_rfc3339())).unwrap();
        let made = comms.create_schedule("c1", &format!("bench-{i}"), body, Utc::now()).await.unwrap();
        let vcare_comms::ScheduleCreate::Created(s) = made else { panic!("{made:?}") };
        model_id = s.schedule_id;
    }
    // The other 99 %: copies of one schedule with their next occurrence 1 to 30 days later.
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let got = ddb
        .get_item()
        .table_name(&table)
        .key("pk", V::S(format!("SCHED#c1#{model_id}")))
        .key("sk", V::S("SCHED".into()))
        .send()
        .await
        .unwrap();
    let model = got.item.expect("the model schedule");
    let mut writes = Vec::new();
    for i in due..n {
        let id = format!("sch_copy{i:07}");
        let at = minute + chrono::Duration::days(1 + (i % 30) as i64);
        let at_text = vcare_store::sort_time(at);
        let mut s = model.clone();
        s.insert("pk".into(), V::S(format!("SCHED#c1#{id}")));
        s.insert("scheduleId".into(), V::S(id.clone()));
        s.insert("nextAt".into(), V::S(at.to_rfc3339()));
        s.remove("gsi1pk");
        s.remove("gsi1sk");
        let mut d = HashMap::new();
        d.insert("pk".to_owned(), V::S(format!("DUE#{}", vcare_store::due_shard(&id))));
        d.insert("sk".to_owned(), V::S(format!("{at_text}#occurrence#c1#{id}")));
        d.insert("kind".to_owned(), V::S("due".into()));
        d.insert("dueKind".to_owned(), V::S("occurrence".into()));
        d.insert("clinicId".to_owned(), V::S("c1".into()));
        d.insert("refId".to_owned(), V::S(id));
        d.insert("at".to_owned(), V::S(at_text));
        for item in [s, d] {
            writes.push(
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                    .build(),
            );
        }
    }
    let mut batches = writes.chunks(25).map(<[_]>::to_vec).collect::<Vec<Vec<WriteRequest>>>().into_iter();
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < 8 {
            let Some(batch) = batches.next() else { break };
            let (ddb, table) = (ddb.clone(), table.clone());
            running.spawn(async move {
                let mut pending = HashMap::from([(table, batch)]);
                while !pending.is_empty() {
                    let out = ddb.batch_write_item().set_request_items(Some(pending)).send().await.unwrap();
                    pending = out.unprocessed_items.unwrap_or_default();
                    pending.retain(|_, v| !v.is_empty());
                }
            });
        }
        if running.join_next().await.is_none() {
            break;
        }
    }
    let seeded = t.elapsed();
    let s = reminder_scheduler::scheduler(&env("ReminderSchedulerFunction"), sdk).await.unwrap();
    // An empty minute first (a minute before): what a run costs when nothing is due.
    let empty = s.run(minute - chrono::Duration::seconds(30)).await.unwrap();
    proxy.reset();
    let t = Instant::now();
    let run = s.run(minute + chrono::Duration::seconds(5)).await.unwrap();
    let took = t.elapsed();
    let calls = proxy.snapshot();
    assert_eq!(run.fired, due, "{run:?}");
    let reads = calls.get("Query").copied().unwrap_or(0);
    let total: usize = calls.values().sum();
    println!(
        "  N {n:>7} ({due} due; seeded in {:.0} s): run {} ({} per due), due-index queries {reads} ({} when none is due), AWS calls {total} ({:.1} per due) — {:?}",
        seeded.as_secs_f64(),
        ms(took),
        ms(took / due as u32),
        empty.reads,
        total as f64 / due as f64,
        calls
    );
    stack.stop().await;
}

async fn accept_with_templates(p: &Providers, proxy: &CountingProxy, sdk: &aws_config::SdkConfig, n: usize) {
    let stack = vcare_tests::comms::quiet_stack(p, "gateway", "ses").await;
    let env = vcare_runtime::Env::from_map(
        stack.gateway.function("NotificationCreateFunction").unwrap().def.environment.clone(),
    );
    let comms = vcare_comms::Notifications::from_env(&env, sdk).unwrap();
    save_template(&comms).await;
    println!("accept, {n} each, in-process (notification-create's service), local AWS endpoint");
    let comms = vcare_comms::Notifications::from_env(&env, sdk).unwrap(); // a fresh container: a cold cache
    for (label, template, variables) in [
        ("built-in appointment-reminder", "appointment-reminder", json!({"when": "10:00"})),
        ("clinic template medication", "medication", json!({"drug": "metformin"})),
    ] {
        let mut times = Vec::new();
        let mut calls_total = 0;
        let (hits0, misses0) = cache(&comms);
        for i in 0..n + 1 {
            let body = serde_json::from_value(json!({
                "recipient": {"userId": "u-pat", "phone": PHONE, "locale": "en"},
                "channels": ["sms"], "template": template, "variables": variables, "priority": "high",
            }))
            .unwrap();
            proxy.reset();
            let t = Instant::now();
            let out = comms.submit("c1", &format!("{template}-{i}"), body, Utc::now()).await.unwrap();
            let took = t.elapsed();
            assert!(matches!(out, vcare_comms::Submitted::Accepted(_)));
            if i > 0 {
                times.push(took);
                calls_total += proxy.total();
            }
        }
        let (hits, misses) = cache(&comms);
        let (hits, misses) = (hits - hits0, misses - misses0);
        let (m, p99, _, _) = stats(times);
        println!(
            "  {label:<32} median {} p99 {} AWS calls per accept {:.2}, template cache {hits} hits / {misses} misses ({:.1} %)",
            ms(m),
            ms(p99),
            calls_total as f64 / n as f64,
            100.0 * hits as f64 / (hits + misses).max(1) as f64
        );
    }
    stack.stop().await;
}

fn cache(comms: &vcare_comms::Notifications) -> (u64, u64) {
    use std::sync::atomic::Ordering;
    (comms.templates_cache.hits.load(Ordering::Relaxed), comms.templates_cache.misses.load(Ordering::Relaxed))
}

async fn week_ahead(p: &Providers, proxy: &CountingProxy, sdk: &aws_config::SdkConfig) {
    let stack = vcare_tests::comms::quiet_stack(p, "gateway", "ses").await;
    let env = |id: &str| vcare_runtime::Env::from_map(stack.gateway.function(id).unwrap().def.environment.clone());
    let comms = vcare_comms::Notifications::from_env(&env("NotificationCreateFunction"), sdk).unwrap();
    let send_at = (Utc::now() + chrono::Duration::days(7)).duration_trunc(chrono::Duration::minutes(1)).unwrap();
    let mut body = vcare_tests::comms::body(&["sms"], "normal");
    body["sendAt"] = json!(send_at.to_rfc3339());
    proxy.reset();
    let out = comms.submit("c1", "week", serde_json::from_value(body).unwrap(), Utc::now()).await.unwrap();
    let vcare_comms::Submitted::Accepted(id) = out else { panic!("{out:?}") };
    let accept = proxy.snapshot();
    let s = reminder_scheduler::scheduler(&env("ReminderSchedulerFunction"), sdk).await.unwrap();
    proxy.reset();
    let run = s.run(send_at + chrono::Duration::seconds(1)).await.unwrap();
    assert_eq!(run.released, 1);
    let release = proxy.snapshot();
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue = stack.gateway.resource("DispatchQueue").unwrap().reference.clone();
    let got = sqs.receive_message().queue_url(&queue).wait_time_seconds(2).send().await.unwrap();
    let message = got.messages.unwrap_or_default().pop().expect("released");
    let m: vcare_comms::DispatchMessage = serde_json::from_str(message.body().unwrap()).unwrap();
    assert_eq!(m.notification_id, id);
    let clock = vcare_runtime::Clock::shifted(send_at + chrono::Duration::seconds(2) - Utc::now());
    let d = vcare_comms::dispatch::dispatcher(&env("DispatchFunction"), sdk, clock).await.unwrap();
    proxy.reset();
    assert_eq!(format!("{:?}", d.handle(&m).await), "Ok(Sent)");
    let dispatch = proxy.snapshot();
    let sum = |c: &HashMap<String, usize>| c.values().sum::<usize>();
    let messages =
        [&accept, &release, &dispatch].iter().map(|c| c.get("SendMessage").copied().unwrap_or(0)).sum::<usize>();
    println!("sendAt 7 days ahead, accept to sent");
    println!("  queue messages sent: {messages} (before: one every 15 minutes, 672)");
    println!(
        "  AWS calls: accept {} {:?}, release {} {:?} (the run's own shard queries included), dispatch {} {:?}; total {}",
        sum(&accept),
        accept,
        sum(&release),
        release,
        sum(&dispatch),
        dispatch,
        sum(&accept) + sum(&release) + sum(&dispatch)
    );
    stack.stop().await;
}
