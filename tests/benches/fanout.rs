//! Fan-out (issue 22) through the local stack: the relay's publish
//! throughput (its sweep over N waiting outbox records: PublishBatch of 10,
//! then the marks) against its floor — the same calls made bare — and
//! the end-to-end latency of an event from its outbox write to a
//! consumer's queue (the stream poller, the relay, SNS, SQS), p50/p99.
//! `make bench ARGS="--bench fanout"`; under `cargo test`, a smoke run.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::TransactWriteItem;
use serde_json::json;
use vcare_domain::events::DomainEvent;
use vcare_local::Registry;
use vcare_tests::measure::{ms, stats};
use vcare_tests::{TestStack, root};

/// Writes `n` outbox records (rooms of clinic c1), as a state change would.
async fn write(stack: &TestStack, n: usize, tag: &str) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let mut written = Vec::new();
    for i in 0..n {
        let now = chrono::Utc::now();
        let event = DomainEvent::new(
            vcare_domain::events::ROOM_CREATED,
            "c1",
            &format!("rm_{tag}{i}"),
            now,
            json!({"roomId": i}),
        );
        let put = vcare_store::outbox_put(&table, &event).unwrap();
        ddb.transact_write_items().transact_items(TransactWriteItem::builder().put(put).build()).send().await.unwrap();
        written.push((event.id.clone(), now));
    }
    written
}

async fn drain(stack: &TestStack, want: usize, within: Duration) -> Vec<(String, Instant)> {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = stack.gateway.resource("DomainEventsQueue").unwrap().reference.clone();
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        let got =
            sqs.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
        let at = Instant::now();
        for m in got.messages.unwrap_or_default() {
            let event: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            out.push((event["id"].as_str().unwrap().to_owned(), at));
            sqs.delete_message().queue_url(&url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    out
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = if bench { 500 } else { 20 };

    // Throughput: the sweep over n waiting records, no pollers running.
    let quiet =
        TestStack::start_with(root().join("infra/template.yaml"), &Registry::vcare(), |c| c.event_sources = false)
            .await;
    let records = write(&quiet, n, "t").await;
    let mut env = quiet.gateway.function("OutboxRelayFunction").unwrap().def.environment.clone();
    env.insert("SWEEP_AFTER_SECONDS".into(), "0".into());
    let relay = outbox_relay::relay(&vcare_runtime::Env::from_map(env.clone()), &quiet.sdk).unwrap();
    let t = Instant::now();
    assert_eq!(relay.sweep().await.unwrap().published, n);
    let relay_time = t.elapsed();
    assert_eq!(drain(&quiet, n, Duration::from_secs(60)).await.len(), n, "every event on the consumer's queue");
    // The floor: the calls the relay must make, bare — a PublishBatch of 10,
    // then each record's mark (an UpdateItem), the ten at once.
    let sns = aws_sdk_sns::Client::new(&quiet.sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&quiet.sdk);
    let table = env["TABLE_NAME"].clone();
    let topic = env["DOMAIN_EVENTS_TOPIC_ARN"].clone();
    let t = Instant::now();
    for (batch, chunk) in records.chunks(10).enumerate() {
        let entries = (0..10)
            .map(|i| {
                aws_sdk_sns::types::PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message("{}")
                    .message_group_id(format!("g{i}"))
                    .message_deduplication_id(format!("floor-{batch}-{i}"))
                    .build()
                    .unwrap()
            })
            .collect();
        sns.publish_batch().topic_arn(&topic).set_publish_batch_request_entries(Some(entries)).send().await.unwrap();
        let marks = chunk.iter().map(|(id, _)| {
            let key = |v: String| aws_sdk_dynamodb::types::AttributeValue::S(v);
            ddb.update_item()
                .table_name(&table)
                .key("pk", key(format!("OUTBOX#{id}")))
                .key("sk", key("OUTBOX".into()))
                .update_expression("SET floorMark = :m")
                .expression_attribute_values(":m", key("1".into()))
                .send()
        });
        for done in vcare_tests::join_all(marks).await {
            done.unwrap();
        }
    }
    let floor_time = t.elapsed();
    println!("relay publish, {n} records (sweep: PublishBatch of 10, then the marks; local AWS endpoint)");
    println!("  relay {} ({:.0} events/s)", ms(relay_time), n as f64 / relay_time.as_secs_f64());
    println!("  PublishBatch + marks, bare {} ({:.0} events/s)", ms(floor_time), n as f64 / floor_time.as_secs_f64());
    println!("  relay / floor: {:.3}", relay_time.as_secs_f64() / floor_time.as_secs_f64());
    quiet.stop().await;

    // End to end, with the pollers: outbox write -> the consumer's queue,
    // events written one at a time at about 20 a second.
    let stack = TestStack::start().await;
    let m = if bench { 200 } else { 10 };
    let drained = tokio::spawn({
        let sdk = stack.sdk.clone();
        let url = stack.gateway.resource("DomainEventsQueue").unwrap().reference.clone();
        async move {
            let got = vcare_tests::receive(&sdk, &url, m, Duration::from_secs(120)).await;
            got.into_iter().map(|(event, at)| (event["id"].as_str().unwrap().to_owned(), at)).collect::<Vec<_>>()
        }
    });
    let mut written = Vec::new();
    for i in 0..m {
        written.extend(write(&stack, 1, &format!("e{i}-")).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = drained.await.unwrap();
    assert_eq!(received.len(), m, "every event arrived");
    let latencies: Vec<Duration> = received
        .iter()
        .map(|(id, at)| {
            let (_, wrote) = written.iter().find(|(w, _)| w == id).expect("an event written here");
            (*at - *wrote).to_std().unwrap_or_default()
        })
        .collect();
    let (p50, p99, min, max) = stats(latencies);
    println!("end to end, {m} events (outbox write -> DomainEventsQueue; the stream poller, the relay, SNS, SQS)");
    println!("  p50 {} p99 {} min {} max {}", ms(p50), ms(p99), ms(min), ms(max));
    stack.stop().await;
}
