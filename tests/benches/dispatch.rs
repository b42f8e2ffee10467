//! Dispatch throughput: a batch of 10 notifications through one dispatcher
//! instance at 0, 50 and 200 ms stand-in provider latency (median, min, max
//! of repeated batches), and the AWS calls per message counted through a
//! proxy. `make bench`; under `cargo test`, a quick smoke run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use vcare_domain::notification::{Channel, Priority};
use vcare_tests::comms::{Providers, comms, stored_with};
use vcare_tests::proxy::CountingProxy;
use vcare_tests::standins::Reply;

fn event(bodies: &[String]) -> aws_lambda_events::sqs::SqsEvent {
    let records: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| json!({"messageId": format!("m{i}"), "receiptHandle": "r", "body": b, "attributes": {}, "messageAttributes": {}}))
        .collect();
    serde_json::from_value(json!({"Records": records})).unwrap()
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rounds = if bench { 7 } else { 1 };
    let p = Providers::start().await;
    let proxy = CountingProxy::start(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await;
    let sdk = vcare_tests::sdk_via(&proxy.url).await;

    println!("dispatch, batches of 10, one instance, provider stand-in on loopback, local AWS endpoint");
    for latency in [0u64, 50, 200] {
        // A fresh stack (table) per latency: moto's transactions slow down as a table grows.
        let stack = vcare_tests::comms::quiet_stack(&p, "gateway", "ses").await;
        let env = stack.gateway.function("DispatchFunction").unwrap().def.environment.clone();
        let d = Arc::new(dispatch::dispatcher(&vcare_runtime::Env::from_map(env), &sdk).await.unwrap());
        let sealer = comms(&stack);
        p.gateway.set_default(Reply::json(200, json!({"messageId": "m"})).after(Duration::from_millis(latency)));
        let mut times = Vec::new();
        for round in 0..rounds + 1 {
            let mut bodies = Vec::new();
            for _ in 0..10 {
                bodies.push(
                    serde_json::to_string(&stored_with(&sealer, &[Channel::Sms], Priority::High, None, None).await)
                        .unwrap(),
                );
            }
            proxy.reset();
            let t = Instant::now();
            let response = d.batch(event(&bodies)).await;
            let took = t.elapsed();
            assert!(response.batch_item_failures.is_empty());
            if round > 0 || !bench {
                times.push(took);
            }
            if round == rounds {
                let calls = proxy.snapshot();
                let total: usize = calls.values().sum();
                println!("  AWS calls per message (warm): {:.1} — {:?}", total as f64 / 10.0, calls);
            }
        }
        // The floor: the same DynamoDB calls (one GetItem, the gate's
        // BatchGetItem of the preferences and the suppression, two
        // conditional single-item transactions per message), ten at once,
        // no handler.
        let mut floor = Vec::new();
        let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
        let table = stack.gateway.resource("Table").unwrap().reference.clone();
        for round in 0..rounds {
            let t = Instant::now();
            let mut set = tokio::task::JoinSet::new();
            for i in 0..10 {
                let (ddb, table) = (ddb.clone(), table.clone());
                set.spawn(async move {
                    use aws_sdk_dynamodb::types::{AttributeValue as V, Put, TransactWriteItem};
                    let pk = V::S(format!("FLOOR#{latency}#{round}#{i}"));
                    let _ = ddb
                        .get_item()
                        .table_name(&table)
                        .key("pk", pk.clone())
                        .key("sk", V::S("F".into()))
                        .consistent_read(true)
                        .send()
                        .await;
                    let keys = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                        .keys(
                            [("pk".to_owned(), V::S(format!("PREF#{i}"))), ("sk".to_owned(), V::S("PREF".into()))]
                                .into(),
                        )
                        .keys(
                            [("pk".to_owned(), V::S(format!("SUPP#{i}"))), ("sk".to_owned(), V::S("SUPP".into()))]
                                .into(),
                        )
                        .consistent_read(true)
                        .build()
                        .unwrap();
                    let _ = ddb.batch_get_item().request_items(&table, keys).send().await;
                    for v in 0..2 {
                        let put = Put::builder()
                            .table_name(&table)
                            .item("pk", pk.clone())
                            .item("sk", V::S("F".into()))
                            .item("v", V::N(v.to_string()))
                            .build()
                            .unwrap();
                        ddb.transact_write_items()
                            .transact_items(TransactWriteItem::builder().put(put).build())
                            .send()
                            .await
                            .unwrap();
                    }
                });
            }
            while set.join_next().await.is_some() {}
            floor.push(t.elapsed());
        }
        floor.sort();
        let floor_median = floor[floor.len() / 2];
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "  latency {latency:>3} ms: AWS floor of the same calls, 10 at once: median {:.1} ms; batch / floor {:.2}",
            floor_median.as_secs_f64() * 1e3,
            median.as_secs_f64() / floor_median.as_secs_f64()
        );
        println!(
            "  latency {latency:>3} ms: batch median {:.1} ms (min {:.1}, max {:.1}) → {:.0} messages/s per instance",
            median.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            10.0 / median.as_secs_f64()
        );
        stack.stop().await;
    }
}
