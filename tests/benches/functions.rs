//! Every function's real binary as Lambda runs it: cold start, warm
//! invocations and peak memory, under the emulated Lambda Runtime API
//! (vcare_tests::lambda) against the loopback AWS endpoint. `make bench`
//! runs it on release binaries; under `cargo test` it runs once per
//! function on the debug ones, as a smoke test.
//!
//! Per function, with its first sample event from events/<binary>/:
//! - init: process start → first `GET /invocation/next` (main.rs: config,
//!   SDK clients, secret decryption), median/min/max over cold starts;
//! - first answer: process start → the answer to that first event;
//! - warm: handler time (event handed over → answer) p50/p99;
//! - peak RSS (VmHWM) after the warm run.
//!
//! `VCARE_BENCH_BINARIES=<dir>` runs the binaries of another build (e.g.
//! another profile) and `VCARE_BENCH_ONLY=health,token-issue` a subset, to
//! compare builds; `VCARE_BENCH_COLDS=N` makes N cold starts each.
//!
//! And, interleaved in the same run, token-issue's warm handler time
//! against its floor (the one consistent GetItem it must make), and
//! notification-create's against its own (one TransactWriteItems of three
//! items of the same sizes, one SendMessage).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vcare_tests::lambda::{Process, RuntimeApi, binary};
use vcare_tests::measure::{doctor_room, ms, read_room, stats};
use vcare_tests::{TestStack, root};

const SAMPLE_ROOM: &str = "rm_samplesampleroom000000000";

struct Row {
    binary: String,
    sample: String,
    answer: String,
    init: Vec<Duration>,
    first: Vec<Duration>,
    warm: Vec<Duration>,
    rss_kib: u64,
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (colds, warms) = if bench { (7, 200) } else { (1, 2) };
    let colds = std::env::var("VCARE_BENCH_COLDS").ok().and_then(|n| n.parse().ok()).unwrap_or(colds);
    // Queues and streams are not polled: the bench plays the event sources.
    let stack = TestStack::start_with(root().join("infra/template.yaml"), &vcare_local::Registry::vcare(), |c| {
        c.event_sources = false;
    })
    .await;
    let room = doctor_room(&stack, "c1", "apt-bench-functions").await["roomId"].as_str().unwrap().to_owned();
    let template = vcare_local::Template::load(&root().join("infra/template.yaml")).unwrap();
    let functions: BTreeMap<String, String> = template
        .of_type("AWS::Serverless::Function")
        .map(|(id, f)| (f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned(), id.to_owned()))
        .collect();

    let mut rows = Vec::new();
    let only = std::env::var("VCARE_BENCH_ONLY").ok();
    let only: Option<Vec<&str>> = only.as_deref().map(|o| o.split(',').collect());
    for (name, id) in functions.iter().filter(|(n, _)| only.as_ref().is_none_or(|o| o.contains(&n.as_str()))) {
        let environment = stack.gateway.function(id).unwrap().def.environment.clone();
        let (sample, event) = first_sample(name, &room);
        let path = bench_binary(name);
        let mut row = Row {
            binary: name.clone(),
            sample,
            answer: String::new(),
            init: vec![],
            first: vec![],
            warm: vec![],
            rss_kib: 0,
        };
        for _ in 0..colds {
            let api = RuntimeApi::start().await;
            let mut process = Process::spawn(&path, &api, &environment);
            row.init.push(process.ready(&api, Duration::from_secs(30)).await.unwrap_or_else(|e| panic!("{name}: {e}")));
            let out = api.invoke(event.clone(), "cold", TRACE, Duration::from_secs(30)).await;
            row.first.push(process.started.elapsed());
            row.answer = answer(&out.result);
            process.stop();
        }
        let api = RuntimeApi::start().await;
        let mut process = Process::spawn(&path, &api, &environment);
        process.ready(&api, Duration::from_secs(30)).await.unwrap();
        for i in 0..warms {
            let out = api.invoke(event.clone(), &format!("warm-{i}"), TRACE, Duration::from_secs(30)).await;
            row.warm.push(out.handler);
        }
        row.rss_kib = process.peak_rss_kib().unwrap_or(0);
        process.stop();
        rows.push(row);
    }

    println!("vcare functions as Lambda runs them ({colds} cold starts, {warms} warm invocations each)");
    println!(
        "| function | sample (answer) | init median (min–max) | first answer median | warm p50 | warm p99 | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let (i50, _, imin, imax) = stats(r.init.clone());
        let (f50, ..) = stats(r.first.clone());
        let (w50, w99, ..) = stats(r.warm.clone());
        println!(
            "| {} | {} ({}) | {} ({}–{}) | {} | {} | {} | {:.1} MiB |",
            r.binary,
            r.sample,
            r.answer,
            ms(i50),
            ms(imin),
            ms(imax),
            ms(f50),
            ms(w50),
            ms(w99),
            r.rss_kib as f64 / 1024.0
        );
    }
    // A room of its own: the room-end sample has ended the other.
    let room = doctor_room(&stack, "c1", "apt-bench-token-floor").await["roomId"].as_str().unwrap().to_owned();
    let selected = |n: &str| only.as_ref().is_none_or(|o| o.contains(&n));
    if selected("token-issue") {
        token_issue_floor(&stack, &room, if bench { 500 } else { 3 }).await;
    }
    if selected("notification-create") {
        notification_create_floor(&stack, if bench { 300 } else { 3 }).await;
    }
    if selected("audit") {
        audit_query_floor(&stack, if bench { 300 } else { 3 }).await;
    }
    stack.stop().await;
}

/// The binary to run: this build's, or `VCARE_BENCH_BINARIES`'s.
fn bench_binary(name: &str) -> std::path::PathBuf {
    std::env::var("VCARE_BENCH_BINARIES").map_or_else(|_| binary(name), |dir| std::path::Path::new(&dir).join(name))
}

const TRACE: &str = "Root=1-6744a0b2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0";

/// The first sample of events/<binary>/ (by name), aimed at the bench's
/// room and clinic.
fn first_sample(binary: &str, room: &str) -> (String, Value) {
    let dir = root().join("events").join(binary);
    let mut samples: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    samples.sort();
    let path = &samples[0];
    let text = std::fs::read_to_string(path).unwrap().replace(SAMPLE_ROOM, room);
    let mut event: Value = serde_json::from_str(&text).unwrap();
    if event.pointer("/requestContext/authorizer/jwt/claims").is_some() {
        vcare_tests::set_clinic(&mut event, "c1");
    }
    (path.file_name().unwrap().to_string_lossy().into_owned(), event)
}

fn answer(result: &Result<Value, Value>) -> String {
    match result {
        Ok(v) if v["statusCode"].is_number() => v["statusCode"].to_string(),
        Ok(_) => "ok".into(),
        Err(e) => format!("error: {}", e["errorType"].as_str().unwrap_or("?")),
    }
}

/// token-issue through the Runtime API against its floor: a consistent
/// GetItem of the room, interleaved so machine noise hits both alike.
async fn token_issue_floor(stack: &TestStack, room: &str, iterations: usize) {
    let environment = stack.gateway.function("TokenIssueFunction").unwrap().def.environment.clone();
    let (_, event) = first_sample("token-issue", room);
    let api = RuntimeApi::start().await;
    let mut process = Process::spawn(&bench_binary("token-issue"), &api, &environment);
    process.ready(&api, Duration::from_secs(30)).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = &environment["TABLE_NAME"];
    let floor = async |_| read_room(&ddb, table, "c1", room).await;
    let handler = async |i| {
        let out = api.invoke(event.clone(), &format!("t-{i}"), TRACE, Duration::from_secs(30)).await;
        assert_eq!(answer(&out.result), "201", "{:?}", out.result);
        out.handler
    };
    let title = format!("token-issue through the Runtime API, {iterations} warm invocations");
    against_floor(&title, "GetItem", iterations, floor, handler).await;
    process.stop();
}

/// The audit query (`GET /v1/audit?actorId=u-doc&limit=20`, the sample)
/// through the Runtime API against the Queries it needs: the actor's index
/// in each of the clinic's shards at once, newest first, 21 each, of the 60
/// records written first. The handler also writes its own record (the
/// query is audited).
async fn audit_query_floor(stack: &TestStack, iterations: usize) {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    let environment = stack.gateway.function("AuditFunction").unwrap().def.environment.clone();
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = environment["AUDIT_TABLE_NAME"].clone();
    let store = vcare_store::AuditStore::new(ddb.clone(), &table, &environment["TABLE_NAME"]);
    for i in 0..60 {
        let draft = vcare_tests::audit::access("c1", "u-doc", &format!("rm_bench{i}"), i);
        store.write(&draft, &[]).await.unwrap();
    }
    let (_, event) = first_sample("audit", "");
    let api = RuntimeApi::start().await;
    let mut process = Process::spawn(&bench_binary("audit"), &api, &environment);
    process.ready(&api, Duration::from_secs(30)).await.unwrap();
    let floor = async |_| {
        let shards = (0..vcare_domain::audit::SHARDS).map(|shard| {
            ddb.query()
                .table_name(&table)
                .index_name("byactor")
                .key_condition_expression("apk = :a AND #at BETWEEN :f AND :t")
                .expression_attribute_names("#at", "at")
                .expression_attribute_values(":a", V::S(format!("c1#u-doc#{shard}")))
                .expression_attribute_values(":f", V::S("0".into()))
                .expression_attribute_values(":t", V::S("~".into()))
                .scan_index_forward(false)
                .limit(21)
                .send()
        });
        for page in vcare_tests::join_all(shards).await {
            page.unwrap();
        }
    };
    let handler = async |i| {
        let out = api.invoke(event.clone(), &format!("a-{i}"), TRACE, Duration::from_secs(30)).await;
        assert_eq!(answer(&out.result), "200", "{:?}", out.result);
        out.handler
    };
    let title = format!("audit query through the Runtime API, {iterations} warm invocations");
    against_floor(&title, "8 Queries at once", iterations, floor, handler).await;
    process.stop();
}

/// Runs `floor` and `handler` alternately (after a warm-up), so machine
/// noise hits both alike, and prints their medians, p99s and ratio.
async fn against_floor(
    title: &str,
    floor_name: &str,
    iterations: usize,
    mut floor: impl AsyncFnMut(usize),
    mut handler: impl AsyncFnMut(usize) -> Duration,
) {
    let warmup = iterations.min(30);
    let (mut handled, mut bare) = (Vec::new(), Vec::new());
    for i in 0..warmup + iterations {
        let t = Instant::now();
        floor(i).await;
        let b = t.elapsed();
        let h = handler(i).await;
        if i >= warmup {
            bare.push(b);
            handled.push(h);
        }
    }
    let (h50, h99, ..) = stats(handled);
    let (b50, b99, ..) = stats(bare);
    println!("{title}");
    println!("  handler  median {} p99 {}", ms(h50), ms(h99));
    println!("  {floor_name}  median {} p99 {}", ms(b50), ms(b99));
    println!("  handler / floor (medians): {:.3}", h50.as_secs_f64() / b50.as_secs_f64());
}

/// notification-create through the Runtime API against the calls it must
/// make: the transaction (notification, idempotency record, outbox event)
/// and the message to the dispatch queue, made bare with items of the sizes
/// the handler writes.
async fn notification_create_floor(stack: &TestStack, iterations: usize) {
    use aws_sdk_dynamodb::types::{AttributeValue as V, Put, TransactWriteItem};
    let environment = stack.gateway.function("NotificationCreateFunction").unwrap().def.environment.clone();
    let (_, mut event) = first_sample("notification-create", "");
    let api = RuntimeApi::start().await;
    let mut process = Process::spawn(&bench_binary("notification-create"), &api, &environment);
    process.ready(&api, Duration::from_secs(30)).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let table = &environment["TABLE_NAME"];
    let queue = &environment["DISPATCH_QUEUE_URL"];
    // The sizes of what the handler stores, read back from its first write.
    event["headers"]["idempotency-key"] = json!("k-floor-probe");
    let out = api.invoke(event.clone(), "probe", TRACE, Duration::from_secs(30)).await;
    assert_eq!(answer(&out.result), "202", "{:?}", out.result);
    let items = ddb.scan().table_name(table).send().await.unwrap().items.unwrap_or_default();
    let size = |prefix: &str| {
        let item = items.iter().find(|i| i["pk"].as_s().is_ok_and(|pk| pk.starts_with(prefix)));
        let item = item.unwrap_or_else(|| panic!("the handler wrote a {prefix} item"));
        item.iter().map(|(k, v)| k.len() + value_size(v)).sum::<usize>()
    };
    let sizes = [size("NOTIF#"), size("IDEMP#"), size("OUTBOX#")];
    let floor = async |i| {
        let puts = sizes.iter().enumerate().map(|(n, len)| {
            let put = Put::builder()
                .table_name(table)
                .item("pk", V::S(format!("FLOOR#{i}#{n}")))
                .item("sk", V::S("FLOOR".into()))
                .item("data", V::S("x".repeat(*len)))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .unwrap();
            TransactWriteItem::builder().put(put).build()
        });
        ddb.transact_write_items().set_transact_items(Some(puts.collect())).send().await.unwrap();
        sqs.send_message().queue_url(queue).message_body(r#"{"floor":true}"#).send().await.unwrap();
    };
    let handler = async |i| {
        event["headers"]["idempotency-key"] = json!(format!("k-floor-{i}"));
        let out = api.invoke(event.clone(), &format!("n-{i}"), TRACE, Duration::from_secs(30)).await;
        assert_eq!(answer(&out.result), "202", "{:?}", out.result);
        out.handler
    };
    let title =
        format!("notification-create through the Runtime API, {iterations} warm accepts (items {sizes:?} bytes)");
    against_floor(&title, "TransactWriteItems + SendMessage", iterations, floor, handler).await;
    process.stop();
}

/// DynamoDB's item size rule, near enough: names plus the values' bytes.
fn value_size(v: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    match v {
        V::S(s) | V::N(s) => s.len(),
        V::B(b) => b.as_ref().len(),
        V::M(m) => m.iter().map(|(k, v)| k.len() + value_size(v)).sum(),
        V::L(l) => l.iter().map(value_size).sum(),
        V::Ss(l) | V::Ns(l) => l.iter().map(String::len).sum(),
        _ => 1,
    }
}
