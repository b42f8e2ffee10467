//! Webhook deliveries per second per worker (issue 22): `webhook-deliver`'s
//! service trying deliveries ten at a time (a batch of its queue, as one
//! Lambda instance takes it) against a stand-in endpoint answering at once
//! and after 200 ms. Each try is the worker's whole path: the delivery and
//! endpoint reads, the secret opened, the signed POST through the
//! SSRF-safe client, the record saved. `make bench ARGS="--bench webhooks"`;
//! under `cargo test`, a smoke run.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vcare_comms::webhook_deliveries::{DeliveryMessage, WebhookDeliveries};
use vcare_local::Registry;
use vcare_tests::standins::{Reply, StandIn};
use vcare_tests::{TestStack, root};

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = if bench { 200 } else { 10 };
    let stack = TestStack::start_with(root().join("infra/template.yaml"), &Registry::vcare(), |c| {
        c.event_sources = false;
        c.parameters.insert("WebhookAllowLoopback".into(), "true".into());
    })
    .await;
    let env = stack.gateway.function("WebhookDeliverFunction").unwrap().def.environment.clone();
    let worker = WebhookDeliveries::from_env(&vcare_runtime::Env::from_map(env), &stack.sdk).unwrap();
    let admin = stack.token("u-admin", Some("c1"), &["clinic-admin"]);
    for latency in [0u64, 200] {
        let endpoint = StandIn::start(Reply::json(200, Value::Null).after(Duration::from_millis(latency))).await;
        let url = format!("{}/v1/webhooks/endpoints", stack.base);
        let body = json!({"url": format!("{}/hook", endpoint.url), "eventTypes": ["virtual_care.room.created"]});
        let (status, _, made) = stack.send(stack.http.post(&url).bearer_auth(&admin).json(&body)).await;
        assert_eq!(status, 201, "{made}");
        let endpoint_id = made["endpointId"].as_str().unwrap().to_owned();
        let now = chrono::Utc::now();
        let mut messages = Vec::new();
        for i in 0..n {
            let event = json!({"specversion": "1.0", "id": format!("ev-{latency}-{i}"), "type": "virtual_care.room.created",
                               "time": now.to_rfc3339(), "subject": format!("rm_{i}"), "clinicid": "c1", "data": {"roomId": i}});
            worker.fan_out(&event).await.unwrap();
            let id = vcare_domain::webhooks::delivery::delivery_id(&format!("ev-{latency}-{i}"), &endpoint_id, now);
            messages.push(DeliveryMessage {
                clinic_id: "c1".into(),
                endpoint_id: endpoint_id.clone(),
                delivery_id: id,
                due: now,
                tries: 0,
            });
        }
        let t = Instant::now();
        for batch in messages.chunks(10) {
            for done in vcare_tests::join_all(batch.iter().map(|m| worker.deliver(m))).await {
                done.unwrap();
            }
        }
        let took = t.elapsed();
        assert_eq!(endpoint.requests().len(), n, "each delivered once");
        println!(
            "webhook deliveries, endpoint latency {latency} ms: {n} in batches of 10, {} ({:.0}/s per worker)",
            vcare_tests::measure::ms(took),
            n as f64 / took.as_secs_f64()
        );
        let delete = format!("{url}/{endpoint_id}");
        assert_eq!(stack.send(stack.http.delete(&delete).bearer_auth(&admin)).await.0, 204);
    }
    stack.stop().await;
}
