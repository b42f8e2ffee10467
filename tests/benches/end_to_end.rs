//! End to end on the local stack: a notification accepted over HTTP
//! (POST /v1/communication/notifications through the local gateway) until
//! the stand-in SMS gateway receives the SMS, through the outbox, the
//! dispatch queue and its poller, one notification at a time so each
//! latency stands alone. `make bench`; under `cargo test`, a smoke run.

use std::time::{Duration, Instant};

use vcare_tests::comms::{Providers, accept, body};
use vcare_tests::measure::{ms, stats};

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (warmup, count) = if bench { (5, 100) } else { (1, 2) };
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let mut latencies = Vec::new();
    for i in 0..warmup + count {
        let before = p.gateway.requests().len();
        let start = Instant::now();
        accept(&stack, &body(&["sms"], "high"), &format!("k-e2e-{i}")).await;
        let received = vcare_tests::eventually(Duration::from_secs(30), "the SMS reaches the gateway", || async {
            p.gateway.requests().get(before).map(|r| r.at)
        })
        .await;
        if i >= warmup {
            latencies.push(received - start);
        }
    }
    stack.stop().await;
    let (p50, p99, min, max) = stats(latencies);
    println!("accept → SMS at the gateway stand-in, {count} notifications one at a time (local stack, pollers on)");
    println!("  median {} p99 {} min {} max {}", ms(p50), ms(p99), ms(min), ms(max));
}
