//! Load and soak on loopback (issue 9). `make bench ARGS="--bench load"`;
//! under `cargo test`, a small smoke run.
//!
//! 1. Load: concurrent callers through the local gateway for token issue
//!    and notification accept: throughput, p50/p99, and every answer 2xx.
//! 2. Soak: VCARE_SOAK_N notifications (default 10,000; 40 in the smoke run)
//!    accepted and dispatched through the stand-in SMS gateway, which fails
//!    every 20th request with a 503 (5 % transient failures). Then the count:
//!    every notification ends in one final status (none lost, none stuck):
//!    `sent`, or `failed` after its three tries all met a 503; and the
//!    gateway answered exactly as many successful sends as there are sent
//!    notifications (a sent notification had at least one success, so each
//!    had exactly one: no duplicate SMS).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue as V;
use serde_json::json;
use vcare_tests::comms::{Providers, body};
use vcare_tests::measure::{doctor_room, ms, stats};
use vcare_tests::standins::Reply;

const CONCURRENCY: usize = 8;

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let per_caller = if bench { 250 } else { 5 };
    let soak: usize =
        std::env::var("VCARE_SOAK_N").ok().and_then(|n| n.parse().ok()).unwrap_or(if bench { 10_000 } else { 40 });
    let p = Arc::new(Providers::start().await);
    load(&p, per_caller).await;
    soak_run(&p, soak).await;
}

/// `CONCURRENCY` callers, `per_caller` requests each; returns throughput and
/// latencies, and fails on any answer that is not `expect`.
async fn hammer<F, Fut>(per_caller: usize, expect: u16, call: F) -> (f64, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let call = Arc::new(call);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CONCURRENCY {
        let call = call.clone();
        tasks.spawn(async move {
            let mut out = Vec::new();
            for i in 0..per_caller {
                let t = Instant::now();
                let status = call(c * per_caller + i).await;
                assert_eq!(status, expect, "request {c}/{i}");
                out.push(t.elapsed());
            }
            out
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    (all.len() as f64 / start.elapsed().as_secs_f64(), all)
}

async fn load(p: &Providers, per_caller: usize) {
    let stack = Arc::new(vcare_tests::comms::quiet_stack(p, "gateway", "ses").await);
    let doctor = stack.token("u-doc", Some("c1"), &["doctor"]);
    let room = doctor_room(&stack, "c1", "apt-load").await;
    let tokens_url = format!("{}/v1/virtual-care/rooms/{}/tokens", stack.base, room["roomId"].as_str().unwrap());

    let s = stack.clone();
    let (rate, times) = hammer(per_caller, 201, move |_| {
        let (s, url, doctor) = (s.clone(), tokens_url.clone(), doctor.clone());
        async move { s.send(s.http.post(url).bearer_auth(doctor).json(&json!({}))).await.0 }
    })
    .await;
    report("token issue", rate, times);

    let service = stack.token("svc", Some("c1"), &["service"]);
    let s = stack.clone();
    let (rate, times) =
        hammer(per_caller, 202, move |i| accept(s.clone(), service.clone(), format!("k-load-{i}"))).await;
    report("notification accept", rate, times);
    Arc::try_unwrap(stack).ok().expect("callers done").stop().await;
}

/// One high-priority SMS notification accepted through the gateway.
async fn accept(s: Arc<vcare_tests::TestStack>, token: String, key: String) -> u16 {
    let url = format!("{}/v1/communication/notifications", s.base);
    let request = s.http.post(url).bearer_auth(token).header("idempotency-key", key);
    s.send(request.json(&body(&["sms"], "high"))).await.0
}

fn report(what: &str, rate: f64, times: Vec<Duration>) {
    let n = times.len();
    let (p50, p99, min, max) = stats(times);
    println!(
        "{what}: {n} requests, {CONCURRENCY} callers, {rate:.0}/s; p50 {} p99 {} min {} max {}",
        ms(p50),
        ms(p99),
        ms(min),
        ms(max)
    );
}

async fn soak_run(p: &Arc<Providers>, n: usize) {
    // Every 20th gateway request fails with a transient 503.
    let replies = (1..=n).map(|i| {
        if i % 20 == 0 {
            Reply::json(503, json!({"error": "busy"}))
        } else {
            Reply::json(200, json!({"messageId": format!("gw-{i}")}))
        }
    });
    p.gateway.script(replies);
    let already = p.gateway.requests().len();
    let stack = Arc::new(vcare_tests::comms::stack(p, "gateway", "ses").await);
    let service = stack.token("svc", Some("c-soak"), &["service"]);
    let start = Instant::now();
    let s = stack.clone();
    let per_caller = n.div_ceil(CONCURRENCY);
    let (accepted, _) =
        hammer(per_caller, 202, move |i| accept(s.clone(), service.clone(), format!("k-soak-{i}"))).await;
    let total = per_caller * CONCURRENCY;
    let accept_time = start.elapsed();

    // Wait until none is left queued.
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.function("NotificationCreateFunction").unwrap().def.environment["TABLE_NAME"].clone();
    let statuses = async || {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        // Accept to final outcome, from the item's own clocks.
        let mut latencies = Vec::new();
        let mut pages = ddb
            .scan()
            .table_name(&table)
            .filter_expression("begins_with(pk, :p) AND sk = :sk")
            .expression_attribute_values(":p", V::S("NOTIF#c-soak#".into()))
            .expression_attribute_values(":sk", V::S("NOTIF".into()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for item in page.unwrap().items() {
                let status = item.get("status").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                let at = |k: &str| {
                    let v = item.get(k).and_then(|v| v.as_s().ok())?;
                    chrono::DateTime::parse_from_rfc3339(v).ok()
                };
                if status != "queued"
                    && let (Some(from), Some(to)) = (at("createdAt"), at("updatedAt"))
                {
                    latencies.push((to - from).to_std().unwrap_or_default());
                }
                *counts.entry(status).or_default() += 1;
            }
        }
        (counts, latencies)
    };
    // Watch the stand-in (in memory) rather than the table: a scan per tick
    // would load the local endpoint that the dispatchers need.
    let deadline = Instant::now() + Duration::from_secs(60 + total as u64 / 5);
    let sends = || {
        let requests = p.gateway.requests().len() - already;
        requests - requests.min(n) / 20
    };
    // Until every notification had its successful send, or the sends stop
    // coming (a notification whose every try met a 503 ends `failed`).
    let (mut seen, mut last_change) = (0, Instant::now());
    while sends() < total && Instant::now() < deadline && last_change.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now_seen = p.gateway.requests().len();
        if now_seen != seen {
            (seen, last_change) = (now_seen, Instant::now());
        }
    }
    // Then the table: every outcome written (none left queued, nor sending:
    // the stand-in sees a send before its dispatcher writes `sent`).
    let (counts, latencies) = loop {
        let (counts, latencies) = statuses().await;
        let done =
            counts.iter().filter(|(s, _)| !matches!(s.as_str(), "queued" | "sending")).map(|(_, c)| c).sum::<usize>();
        if done == total || Instant::now() > deadline {
            break (counts, latencies);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let elapsed = start.elapsed();
    let requests = p.gateway.requests().len() - already;
    let failures_injected = requests.min(n) / 20;
    let successes = requests - failures_injected;
    println!(
        "soak: {total} notifications accepted in {} ({accepted:.0}/s), all final after {} ({:.0}/s end to end)",
        ms(accept_time),
        ms(elapsed),
        total as f64 / elapsed.as_secs_f64()
    );
    if !latencies.is_empty() {
        let (p50, p99, _, max) = stats(latencies);
        println!("  accept to final outcome: p50 {} p99 {} max {}", ms(p50), ms(p99), ms(max));
    }
    println!(
        "  statuses {counts:?}; gateway requests {requests}, 503s injected {failures_injected}, successful sends {successes}"
    );
    let (sent, failed) = (counts.get("sent").copied().unwrap_or(0), counts.get("failed").copied().unwrap_or(0));
    assert_eq!(sent + failed, total, "every notification final (sent or failed), none lost or stuck: {counts:?}");
    assert_eq!(successes, sent, "one successful SMS per sent notification: no duplicate, none missing");
    // A notification fails only after MaxTriesPerProvider (3) transient
    // failures on the only SMS provider: each took three injected 503s.
    assert!(failures_injected >= 3 * failed, "{failed} failed with only {failures_injected} failures injected");
    Arc::try_unwrap(stack).ok().expect("callers done").stop().await;
}
