//! Fault injection (issue 9): a dependency fails under a function; what the
//! caller sees, what is retried, and the count that shows nothing was lost
//! or done twice. Faults come from the proxy in front of the local endpoint
//! (the service's own 500 on the named operation, the SDK's retries
//! included).

use aws_sdk_dynamodb::types::AttributeValue as V;
use serde_json::{Value, json};
use vcare_runtime::Function;
use vcare_tests::comms::{PHONE, Providers};
use vcare_tests::proxy::{CountingProxy, Fault};
use vcare_tests::standins::Reply;

/// Items of a kind (`NOTIF#`, `IDEMP#`, `OUTBOX#`) for clinic c-fault.
async fn items(ddb: &aws_sdk_dynamodb::Client, table: &str, prefix: &str) -> usize {
    let scan = ddb.scan().table_name(table).send().await.unwrap();
    let of_clinic = |i: &std::collections::HashMap<String, V>| {
        i["pk"].as_s().is_ok_and(|pk| pk.starts_with(prefix))
            && i.values().any(|v| v.as_s().is_ok_and(|s| s.contains("c-fault")))
    };
    scan.items().iter().filter(|i| of_clinic(i)).count()
}

/// notification-create with its AWS calls through a proxy, and the sample
/// accept event for clinic c-fault under `key`.
struct Accepting {
    p: Providers,
    stack: vcare_tests::TestStack,
    proxy: CountingProxy,
    environment: std::collections::HashMap<String, String>,
    function: vcare_http::HttpFunction,
    event: Value,
}

async fn accepting(key: &str) -> Accepting {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::quiet_stack(&p, "gateway", "ses").await;
    let proxy = CountingProxy::start(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await;
    let environment = stack.gateway.function("NotificationCreateFunction").unwrap().def.environment.clone();
    let env = vcare_runtime::Env::from_map(environment.clone());
    let function = notification_create::function(&env, &vcare_tests::sdk_via(&proxy.url).await).await.unwrap();
    let text = std::fs::read_to_string(vcare_tests::root().join("events/notification-create/accept.json")).unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    vcare_tests::set_clinic(&mut event, "c-fault");
    event["headers"]["idempotency-key"] = json!(key);
    Accepting { p, stack, proxy, environment, function, event }
}

#[tokio::test]
async fn storage_failing_during_an_accept_is_a_503_that_writes_nothing_and_the_retry_accepts_once() {
    let Accepting { p: _p, stack, proxy, environment, function, event } = accepting("k-fault-accept").await;
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let table = &environment["TABLE_NAME"];
    let queued = async || {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&environment["DISPATCH_QUEUE_URL"])
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        let n =
            attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages].clone();
        n.parse::<usize>().unwrap()
    };

    // The transaction fails (every SDK retry too): the caller is told to retry.
    proxy.fail("TransactWriteItems");
    let answer = function.invoke(event.clone(), Default::default()).await.unwrap();
    assert_eq!(answer["statusCode"], 503, "{answer}");
    assert_eq!(answer["headers"]["content-type"], "application/problem+json");
    let body = answer["body"].as_str().unwrap();
    assert!(!body.contains(PHONE) && !body.contains("+93"), "{body}");
    // The SDK retries unless its retry quota is spent: the quota is shared
    // by every DynamoDB client of the process (its retry partition), and the
    // storm test in this binary spends it, so only the attempt is certain.
    assert!(proxy.count("TransactWriteItems") >= 1, "the write was tried");
    for kind in ["NOTIF#", "IDEMP#", "OUTBOX#"] {
        assert_eq!(items(&ddb, table, kind).await, 0, "{kind}: nothing written");
    }
    assert_eq!(queued().await, 0, "nothing queued");

    // Storage is back: the caller's retry (same key, same body) is accepted,
    // and a second retry answers the same id; one notification, one message.
    proxy.heal("TransactWriteItems");
    let first = function.invoke(event.clone(), Default::default()).await.unwrap();
    assert_eq!(first["statusCode"], 202, "{first}");
    let again = function.invoke(event.clone(), Default::default()).await.unwrap();
    assert_eq!(again["statusCode"], 202, "{again}");
    let id = |a: &Value| serde_json::from_str::<Value>(a["body"].as_str().unwrap()).unwrap()["notificationId"].clone();
    assert_eq!(id(&first), id(&again));
    for kind in ["NOTIF#", "IDEMP#", "OUTBOX#"] {
        assert_eq!(items(&ddb, table, kind).await, 1, "{kind}: written once");
    }
    // The replay of a still-queued notification queues it again (dispatch
    // claims attempts, so the copy sends nothing twice: dispatch.rs).
    assert!((1..=2).contains(&queued().await));
    stack.stop().await;
}

#[tokio::test]
async fn an_accept_whose_write_lost_every_answer_is_read_back_and_answered_with_its_id() {
    let Accepting { p: _p, stack, proxy, environment, function, event } = accepting("k-fault-lost-answer").await;

    // Every attempt of the transaction is carried out and answered 500 (the
    // first writes; the SDK's retries meet its condition): the caller gets
    // the notification's id, not a 503 for a write that happened.
    proxy.inject("TransactWriteItems", Fault::ErrorAfterWrite, 100);
    let answer = function.invoke(event.clone(), Default::default()).await.unwrap();
    assert!(proxy.injected("TransactWriteItems") >= 1, "every attempt lost its answer");
    assert_eq!(answer["statusCode"], 202, "{answer}");
    proxy.heal("TransactWriteItems");
    let again = function.invoke(event, Default::default()).await.unwrap();
    let id = |a: &Value| serde_json::from_str::<Value>(a["body"].as_str().unwrap()).unwrap()["notificationId"].clone();
    assert_eq!(id(&answer), id(&again), "the retry names the same notification");
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    assert_eq!(items(&ddb, &environment["TABLE_NAME"], "NOTIF#").await, 1, "written once");
    stack.stop().await;
}

#[tokio::test]
async fn a_notification_whose_queue_message_was_lost_is_found_by_the_sweep_and_sent() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::quiet_stack(&p, "gateway", "ses").await;
    let id = vcare_tests::comms::accept(&stack, &vcare_tests::comms::body(&["sms"], "high"), "k-lost-message").await;
    let env = stack.gateway.function("DispatchFunction").unwrap().def.environment.clone();
    let (sqs, url) = (aws_sdk_sqs::Client::new(&stack.sdk), env["DISPATCH_QUEUE_URL"].clone());
    // The message is lost (as if dead-lettered): the queue is emptied.
    let received = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
    for m in received.messages() {
        sqs.delete_message().queue_url(&url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
    }
    let sweep_env = stack.gateway.function("DlrSweepFunction").unwrap().def.environment.clone();
    let sweep = dlr_sweep::sweep(&vcare_runtime::Env::from_map(sweep_env), &stack.sdk).unwrap();
    let now = chrono::Utc::now();
    assert_eq!(sweep.run(now).await.unwrap().requeued, 0, "not overdue yet: it may still be on its way");
    let later = now + chrono::Duration::minutes(6);
    let before = vcare_runtime::metrics::counted("OverdueNotifications", &[]);
    assert_eq!(sweep.run(later).await.unwrap().requeued, 1);
    assert!(vcare_runtime::metrics::counted("OverdueNotifications", &[]) > before, "counted for the alarm");
    assert_eq!(sweep.run(later).await.unwrap().requeued, 0, "queued once per slack, not every run");
    // The re-queued message sends it.
    let d = std::sync::Arc::new(dispatch::dispatcher(&vcare_runtime::Env::from_map(env), &stack.sdk).await.unwrap());
    let delivered = drain(&sqs, &url, |event| {
        let d = d.clone();
        async move { failed_ids(&d.batch(event).await) }
    })
    .await;
    assert_eq!(delivered, 1);
    assert_eq!(vcare_tests::comms::get(&stack, &id).await["status"], "sent");
    assert_eq!(p.gateway.requests().len(), 1);
    stack.stop().await;
}

/// One poll of Lambda's SQS poller, by hand, against the real dispatch
/// queue: receive a batch, hand it to `deliver`, delete what it did not
/// report failed and make the rest visible again at once. Returns how many
/// messages it delivered.
async fn deliver_once<F, Fut>(sqs: &aws_sdk_sqs::Client, url: &str, deliver: &F) -> usize
where
    F: Fn(aws_lambda_events::sqs::SqsEvent) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let received = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .visibility_timeout(60)
        .send()
        .await
        .unwrap();
    let messages = received.messages();
    if messages.is_empty() {
        return 0;
    }
    let records: Vec<Value> = messages
        .iter()
        .map(|m| json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(), "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs"}))
        .collect();
    let failed = deliver(serde_json::from_value(json!({"Records": records})).unwrap()).await;
    for m in messages {
        let handle = m.receipt_handle().unwrap();
        if failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
            sqs.change_message_visibility()
                .queue_url(url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
        } else {
            sqs.delete_message().queue_url(url).receipt_handle(handle).send().await.unwrap();
        }
    }
    messages.len()
}

/// [`deliver_once`] until the queue has been empty for three polls (3 s);
/// returns the number of messages delivered.
async fn drain<F, Fut>(sqs: &aws_sdk_sqs::Client, url: &str, deliver: F) -> usize
where
    F: Fn(aws_lambda_events::sqs::SqsEvent) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let (mut delivered, mut idle) = (0, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while idle < 3 {
        assert!(std::time::Instant::now() < deadline, "the queue did not drain");
        match deliver_once(sqs, url, &deliver).await {
            // Messages waiting out a claim come back delayed: not idle yet.
            0 if delayed(sqs, url).await == 0 => idle += 1,
            0 => idle = 0,
            n => (delivered, idle) = (delivered + n, 0),
        }
    }
    delivered
}

/// Messages on the queue that are delayed (a wait re-enqueued).
async fn delayed(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let got = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    got.attributes()
        .and_then(|a| a.get(&A::ApproximateNumberOfMessagesDelayed))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn failed_ids(r: &aws_lambda_events::sqs::SqsBatchResponse) -> Vec<String> {
    r.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
}

/// Dispatch with the environment of the template, the given changes, and
/// every AWS call through `proxy`.
async fn dispatcher(
    stack: &vcare_tests::TestStack,
    proxy: &CountingProxy,
    changes: &[(&str, &str)],
) -> (std::sync::Arc<dispatch::Dispatcher>, std::collections::HashMap<String, String>) {
    let mut env = stack.gateway.function("DispatchFunction").unwrap().def.environment.clone();
    for (k, v) in changes {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let sdk = vcare_tests::sdk_via(&proxy.url).await;
    let d = dispatch::dispatcher(&vcare_runtime::Env::from_map(env.clone()), &sdk).await.unwrap();
    (std::sync::Arc::new(d), env)
}

/// What a dispatch fault test starts from. Keep `proxy` alive while the
/// dispatcher runs: its calls go through it.
struct Rig {
    p: Providers,
    stack: vcare_tests::TestStack,
    proxy: CountingProxy,
    /// The accepted notifications.
    ids: Vec<String>,
    /// A dispatch container whose AWS calls go through `proxy`.
    d: std::sync::Arc<dispatch::Dispatcher>,
    env: std::collections::HashMap<String, String>,
    sqs: aws_sdk_sqs::Client,
    /// The dispatch queue.
    url: String,
}

/// The stand-in providers, a stack without pollers (the test delivers),
/// a proxy in front of the local endpoint, `n` high-priority SMS
/// notifications accepted under keys `k-{name}-{i}`, and a dispatcher with
/// the template's environment and `changes`.
async fn rig(name: &str, sms: &str, n: usize, changes: &[(&str, &str)]) -> Rig {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::quiet_stack(&p, sms, "ses").await;
    let proxy = CountingProxy::start(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await;
    let mut ids = Vec::new();
    for i in 0..n {
        let body = vcare_tests::comms::body(&["sms"], "high");
        ids.push(vcare_tests::comms::accept(&stack, &body, &format!("k-{name}-{i}")).await);
    }
    let (d, env) = dispatcher(&stack, &proxy, changes).await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = env["DISPATCH_QUEUE_URL"].clone();
    Rig { p, stack, proxy, ids, d, env, sqs, url }
}

#[tokio::test]
async fn throttled_and_failing_storage_under_a_redelivery_storm_sends_every_notification_once() {
    const N: usize = 30;
    // Two containers of dispatch; a claim left without an outcome is
    // written off after 8 s (the template says 120), the shortest the time
    // budget allows for a 3 s function.
    let claim_timeout = [("CLAIM_TIMEOUT_SECONDS", "8"), ("FUNCTION_TIMEOUT_SECONDS", "3")];
    let Rig { p, stack, proxy, ids, d: a, sqs, url, .. } = rig("storm", "gateway", N, &claim_timeout).await;
    let (b, _) = dispatcher(&stack, &proxy, &claim_timeout).await;

    // A third of the reads throttled; a fifth of the writes carried out and
    // then answered with a 500 (the write happened; dispatch is told it did
    // not), so claims and outcomes are retried against their own effects.
    proxy.inject("GetItem", Fault::Throttle, 33);
    proxy.inject("TransactWriteItems", Fault::ErrorAfterWrite, 20);
    // The storm: every batch reaches both containers at once; a message the
    // first reports failed comes back, and so does every message the first
    // time it is delivered (its delete lost, as when a poller dies).
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    let delivered = drain(&sqs, &url, |event| {
        let (a, b) = (a.clone(), b.clone());
        let first_time: Vec<String> = event
            .records
            .iter()
            .filter_map(|r| r.message_id.clone())
            .filter(|id| seen.lock().unwrap().insert(id.clone()))
            .collect();
        async move {
            let (first, _) = tokio::join!(a.batch(event.clone()), b.batch(event));
            let mut back = failed_ids(&first);
            back.extend(first_time);
            back
        }
    })
    .await;
    let (throttled, ambiguous) = (proxy.injected("GetItem"), proxy.injected("TransactWriteItems"));
    println!(
        "{N} notifications; {delivered} deliveries (x2 containers); {throttled} reads throttled; {ambiguous} writes answered 500 after they happened"
    );
    assert!(throttled > 0 && ambiguous > 0, "faults were injected: {throttled} {ambiguous}");
    assert!(delivered >= 2 * N, "every message was delivered again: {delivered}");

    // The count: every notification sent, each with exactly one SMS.
    proxy.inject("GetItem", Fault::Throttle, 0);
    proxy.inject("TransactWriteItems", Fault::Error, 0);
    let mut references = std::collections::HashSet::new();
    for r in p.gateway.requests() {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert!(references.insert(body["reference"].as_str().unwrap().to_owned()), "one request per attempt");
    }
    assert_eq!(p.gateway.requests().len(), N, "one SMS per notification, no duplicate");
    for id in &ids {
        let n = vcare_tests::comms::get(&stack, id).await;
        assert_eq!(n["status"], "sent", "{n}");
        let sent: Vec<_> = n["attempts"].as_array().unwrap().iter().filter(|a| a["status"] == "sent").collect();
        assert_eq!(sent.len(), 1, "{n}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn kms_failing_mid_run_holds_sends_and_accepts_back_and_loses_nothing() {
    let Rig { p, stack, proxy, ids, d, env, sqs, url } = rig("kms", "gateway", 5, &[]).await;
    let url = &url;

    // Dispatch is warm (its gateway key decrypted at start) when KMS goes:
    // it can neither open the recipients' data key nor sign the receipt
    // URL. Each delivery reports every message failed (they come back);
    // nothing is sent, nothing is written off.
    proxy.fail("Decrypt");
    proxy.fail("GenerateMac");
    for _ in 0..2 {
        let deliver = |event| {
            let d = d.clone();
            async move {
                let failed = failed_ids(&d.batch(event).await);
                assert_eq!(failed.len(), 5, "every message reported failed while KMS is down");
                failed
            }
        };
        assert_eq!(deliver_once(&sqs, url, &deliver).await, 5);
    }
    assert!(proxy.injected("Decrypt") > 0);
    assert_eq!(p.gateway.requests().len(), 0, "nothing sent without the data key");
    for id in &ids {
        let n = vcare_tests::comms::get(&stack, id).await;
        assert_eq!((n["status"].as_str(), n["attempts"].as_array().map(Vec::len)), (Some("queued"), Some(0)), "{n}");
    }

    // KMS is back: every notification goes out once.
    proxy.heal("Decrypt");
    proxy.heal("GenerateMac");
    drain(&sqs, url, |event| {
        let d = d.clone();
        async move { failed_ids(&d.batch(event).await) }
    })
    .await;
    assert_eq!(p.gateway.requests().len(), 5);
    for id in &ids {
        assert_eq!(vcare_tests::comms::get(&stack, id).await["status"], "sent");
    }

    // The accept side: a container that needs a new data key while KMS is
    // down answers 503 and writes nothing; the retry after is accepted.
    let mut create_env = stack.gateway.function("NotificationCreateFunction").unwrap().def.environment.clone();
    create_env.insert("PII_KEY_MAX_USES".into(), "1".into());
    let sdk = vcare_tests::sdk_via(&proxy.url).await;
    let create = notification_create::function(&vcare_runtime::Env::from_map(create_env), &sdk).await.unwrap();
    let text = std::fs::read_to_string(vcare_tests::root().join("events/notification-create/accept.json")).unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    vcare_tests::set_clinic(&mut event, "c-fault");
    event["headers"]["idempotency-key"] = json!("k-kms-first");
    assert_eq!(create.invoke(event.clone(), Default::default()).await.unwrap()["statusCode"], 202);
    proxy.fail("GenerateDataKey");
    event["headers"]["idempotency-key"] = json!("k-kms-second");
    let answer = create.invoke(event.clone(), Default::default()).await.unwrap();
    assert_eq!(answer["statusCode"], 503, "{answer}");
    assert_eq!(answer["headers"]["content-type"], "application/problem+json");
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    assert_eq!(items(&ddb, &env["TABLE_NAME"], "NOTIF#").await, 1, "only the first was written");
    proxy.heal("GenerateDataKey");
    assert_eq!(create.invoke(event, Default::default()).await.unwrap()["statusCode"], 202);
    assert_eq!(items(&ddb, &env["TABLE_NAME"], "NOTIF#").await, 2);
    stack.stop().await;
}

#[tokio::test]
async fn a_burst_of_provider_429s_and_5xx_is_waited_out_or_failed_over_and_each_notification_sent_once() {
    const N: usize = 40;
    const BURST: usize = 100;
    let Rig { p, stack, proxy: _proxy, ids, d, sqs, url, .. } = rig("burst", "gateway,twilio", N, &[]).await;
    // The gateway's next 100 answers: 20 rate-limited with Retry-After, then
    // 80 unavailable. Twilio is the second SMS provider.
    p.gateway.script((0..BURST).map(|i| {
        if i < 20 {
            Reply::json(429, json!({"error": "too many requests"})).header("retry-after", "1")
        } else {
            Reply::json(503, json!({"error": "unavailable"}))
        }
    }));
    let started = std::time::Instant::now();
    drain(&sqs, &url, |event| {
        let d = d.clone();
        async move { failed_ids(&d.batch(event).await) }
    })
    .await;

    // Every notification sent once: one successful answer each, from one
    // provider or the other; the burst's refusals on top. A notification
    // leaves the gateway after its third refusal, so with 100 refusals for
    // 40 at least 20 went to Twilio.
    let gateway = p.gateway.requests();
    let (refused, gateway_sent) = (gateway.len().min(BURST), gateway.len().saturating_sub(BURST));
    let twilio_sent = p.twilio.requests().len();
    println!(
        "{N} notifications: {refused} gateway refusals, {gateway_sent} gateway sends, {twilio_sent} failed over to Twilio, {:?}",
        started.elapsed()
    );
    assert_eq!(refused, BURST);
    assert_eq!(gateway_sent + twilio_sent, N, "one successful send per notification");
    assert!(twilio_sent >= BURST - 2 * N, "failed over after three refusals: {twilio_sent}");
    let mut references = std::collections::HashSet::new();
    for r in &gateway[BURST..] {
        assert!(references.insert(r.json()["reference"].as_str().unwrap().to_owned()));
    }
    let mut waited = 0;
    for id in &ids {
        let n = vcare_tests::comms::get(&stack, id).await;
        assert_eq!(n["status"], "sent", "{n}");
        let attempts = n["attempts"].as_array().unwrap();
        assert_eq!(attempts.iter().filter(|a| a["status"] == "sent").count(), 1, "{n}");
        // A rate-limited attempt's retry waited its Retry-After (the queue's delay).
        for pair in attempts.windows(2) {
            if pair[0]["error"].as_str().is_some_and(|e| e.contains("429")) {
                waited += 1;
                let gap = chrono::DateTime::parse_from_rfc3339(pair[1]["at"].as_str().unwrap()).unwrap()
                    - chrono::DateTime::parse_from_rfc3339(pair[0]["at"].as_str().unwrap()).unwrap();
                assert!(gap >= chrono::Duration::milliseconds(900), "Retry-After honoured: {gap}");
            }
        }
    }
    assert!(waited > 0, "some attempts were rate-limited and retried");
    stack.stop().await;
}

#[tokio::test]
async fn a_claim_whose_write_answered_500_after_it_happened_is_read_back_and_used_not_waited_out() {
    // The template's claim timeout (120 s): a claim waited out would not be
    // written off within this test.
    let Rig { p, stack, proxy, ids, d, sqs, url, .. } = rig("ambiguous", "gateway", 1, &[]).await;
    let url = &url;

    // Every write happens and is answered 500: the claim, then the outcome.
    proxy.inject("TransactWriteItems", Fault::ErrorAfterWrite, 100);
    let failed = |event| {
        let d = d.clone();
        async move { failed_ids(&d.batch(event).await) }
    };
    assert_eq!(deliver_once(&sqs, url, &failed).await, 1);
    // (The SDK retries each write; its retries meet the moved-on version.)
    assert!(proxy.injected("TransactWriteItems") >= 2, "the claim and the outcome were both answered 500");
    assert_eq!(p.gateway.requests().len(), 1, "the claim was read back and the SMS sent at once");

    // The redelivery (the outcome's write failed too) finds it sent.
    proxy.heal("TransactWriteItems");
    drain(&sqs, url, failed).await;
    assert_eq!(p.gateway.requests().len(), 1, "sent once");
    let n = vcare_tests::comms::get(&stack, &ids[0]).await;
    assert_eq!(n["status"], "sent", "{n}");
    assert_eq!(n["attempts"].as_array().unwrap().len(), 1, "one attempt, none written off: {n}");
    stack.stop().await;
}

/// Delivery receipts while storage and KMS falter. The provider sees a 503
/// problem (which it retries), never a 401 or a 4xx (which it would not);
/// each raw receipt is kept once, each notification ends `delivered`, and
/// its delivered event exists once.
#[tokio::test]
async fn receipts_while_storage_and_kms_falter_are_answered_503_retried_and_counted_once() {
    use vcare_tests::comms::{PUBLIC_BASE, accept, body, get, outbox_events, partition_items, wait_for};
    const N: usize = 10;
    let p = Providers::start().await;
    let proxy = std::sync::Arc::new(CountingProxy::start(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await);
    let stack = std::sync::Arc::new(vcare_tests::comms::stack_through(&p, "gateway", "ses", &proxy.url).await);
    let mut sent = Vec::new();
    for i in 0..N {
        let id = accept(&stack, &body(&["sms"], "high"), &format!("k-dlr-{i}")).await;
        wait_for(&stack, &id, "sent", std::time::Duration::from_secs(30)).await;
        let request = p.gateway.requests().last().unwrap().json();
        let url = request["callbackUrl"].as_str().unwrap().replacen(PUBLIC_BASE, &stack.base, 1);
        sent.push((id, url, request["reference"].as_str().unwrap().to_owned()));
    }

    // Half of the writes happen and lose their answer; half of the KMS
    // checks of the receipt's `sig` fail. The SDK retries each call.
    for op in ["TransactWriteItems", "PutItem"] {
        proxy.inject(op, Fault::ErrorAfterWrite, 50);
    }
    proxy.inject("VerifyMac", Fault::Error, 50);
    // Each provider posts ACCEPTD, DELIVRD and DELIVRD again, retrying
    // what is not a 204, as gateways do.
    let mut providers = tokio::task::JoinSet::new();
    for (_, url, reference) in sent.clone() {
        let stack = stack.clone();
        providers.spawn(async move {
            let mut answers = std::collections::BTreeMap::<u16, usize>::new();
            for status in ["ACCEPTD", "DELIVRD", "DELIVRD"] {
                let receipt = json!({"messageId": "gw-msg", "reference": reference, "status": status, "err": "000"});
                for tries in 1.. {
                    let (code, content_type, out) = stack.send(stack.http.post(&url).json(&receipt)).await;
                    *answers.entry(code).or_default() += 1;
                    if code == 204 {
                        break;
                    }
                    assert_eq!(code, 503, "a faltering dependency is a 503 the provider retries: {out}");
                    assert_eq!(content_type, "application/problem+json");
                    assert!(tries < 20, "{status} never taken");
                }
            }
            answers
        });
    }
    let mut answers = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(a) = providers.join_next().await {
        for (code, n) in a.unwrap() {
            *answers.entry(code).or_default() += n;
        }
    }
    let lost = proxy.injected("TransactWriteItems") + proxy.injected("PutItem");
    let kms = proxy.injected("VerifyMac");
    println!(
        "{N} notifications, {} receipts: answers {answers:?}; {lost} writes lost their answer, {kms} VerifyMac failed",
        N * 3
    );
    assert!(lost > 0 && kms > 0, "faults were injected");
    assert!(answers.get(&503).is_some_and(|n| *n > 0), "some reached the provider as 503: {answers:?}");
    assert_eq!(answers[&204], N * 3, "every receipt taken once in the end");

    // The count, with the store healthy again.
    for op in ["TransactWriteItems", "PutItem", "VerifyMac"] {
        proxy.heal(op);
    }
    for (id, _, _) in &sent {
        let n = get(&stack, id).await;
        assert_eq!(n["status"], "delivered", "{n}");
        assert_eq!(partition_items(&stack, id, "RECEIPT#").await.len(), 2, "ACCEPTD and DELIVRD kept once each");
        let events = outbox_events(&stack, id).await;
        assert_eq!(events.iter().filter(|e| *e == "delivered").count(), 1, "{events:?}");
    }
    std::sync::Arc::try_unwrap(stack).ok().expect("providers done").stop().await;
}

/// The virtual-care routes while storage falters: a throttled read is a
/// 503 (never a 404 or 403 that would tell the caller the room is not
/// theirs), and a room whose write happened but lost its answer is one
/// room with one created event when the caller retries.
#[tokio::test]
async fn virtual_care_while_storage_falters_answers_503_and_a_retried_create_makes_one_room() {
    let p = Providers::start().await;
    let proxy = CountingProxy::start(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await;
    let stack = vcare_tests::comms::stack_through(&p, "gateway", "ses", &proxy.url).await;
    let doctor = stack.token("u-doc", Some("c1"), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::minutes(5);
    let body = vcare_tests::rooms::room_body("apt-fault", start, &[vcare_tests::rooms::doctor()]);
    let rooms = format!("{}/v1/virtual-care/rooms", stack.base);
    let create = || stack.send(stack.http.post(&rooms).bearer_auth(&doctor).json(&body));

    // Every write of the room happens and loses its answer (the SDK's
    // retries too): the caller is told to retry.
    proxy.inject("TransactWriteItems", Fault::ErrorAfterWrite, 100);
    let (status, content_type, out) = create().await;
    assert_eq!((status, content_type.as_str()), (503, "application/problem+json"), "{out}");
    assert!(!out.to_string().contains("Amini"), "no personal data in the error: {out}");
    proxy.heal("TransactWriteItems");
    let (status, _, room) = create().await;
    assert_eq!(status, 200, "the retry finds the room its first try made: {room}");
    let (again, _, same) = create().await;
    assert_eq!((again, &same["roomId"]), (200, &room["roomId"]));
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let scan = ddb.scan().table_name(&table).send().await.unwrap();
    let of = |prefix: &str| {
        scan.items()
            .iter()
            .filter(|i| {
                i["pk"].as_s().is_ok_and(|pk| pk.starts_with(prefix)) && i["sk"].as_s().is_ok_and(|s| s == "ROOM")
            })
            .count()
    };
    assert_eq!(of("ROOM#c1#"), 1, "one room");
    let created = scan
        .items()
        .iter()
        .filter(|i| i.get("eventType").and_then(|v| v.as_s().ok()).is_some_and(|t| t.ends_with("room.created")))
        .count();
    assert_eq!(created, 1, "one room.created event");

    // Reads throttled: 503, never "not yours".
    let room_id = room["roomId"].as_str().unwrap();
    proxy.inject("GetItem", Fault::Throttle, 100);
    let tokens = format!("{rooms}/{room_id}/tokens");
    let (status, content_type, out) = stack.send(stack.http.post(&tokens).bearer_auth(&doctor).json(&json!({}))).await;
    assert_eq!((status, content_type.as_str()), (503, "application/problem+json"), "{out}");
    let (status, _, out) = stack.get(&format!("/v1/virtual-care/rooms/{room_id}"), Some(&doctor)).await;
    assert_eq!(status, 503, "{out}");
    proxy.heal("GetItem");
    let (status, _, token) = stack.send(stack.http.post(&tokens).bearer_auth(&doctor).json(&json!({}))).await;
    assert_eq!(status, 201, "{token}");
    stack.stop().await;
}
