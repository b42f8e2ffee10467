//! The audit trail's sequencer under load: records written for one clinic
//! as fast as the loopback endpoint takes them (32 writers, through the
//! store as every function writes them), sealed by the sequencer from the
//! audit table's stream (the only worker polling). Reported: the write rate
//! reached, and each record's sealing lag (its block's seal time minus the
//! record's time): p50, p99, max. `make bench ARGS="--bench audit_seal"`;
//! under `cargo test` a few records, as a smoke test.

use std::time::Instant;

use vcare_tests::TestStack;
use vcare_tests::audit::{audit_table, chain};

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let total = if bench { 3_000 } else { 60 };
    let template = vcare_tests::root().join("infra/template.yaml");
    let stack = TestStack::start_with(template, &vcare_local::Registry::vcare(), |c| {
        c.only_sources = Some(vec!["AuditSealFunction".into()]);
    })
    .await;
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let store = vcare_store::AuditStore::new(ddb, audit_table(&stack), "unused");
    let clinic = "c-bench";
    let began = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let writers = (0..32).map(|_| async {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= total {
                return;
            }
            store
                .write(&vcare_tests::audit::access(clinic, "svc-load", &format!("ntf_bench{i}"), i), &[])
                .await
                .unwrap();
        }
    });
    vcare_tests::join_all(writers).await;
    let wrote = began.elapsed();
    let sealed = chain(&stack, clinic).await;
    let all_sealed = began.elapsed();
    assert_eq!(sealed.len(), total);
    let mut lags = Vec::new();
    let mut after = 0;
    loop {
        let blocks = store.blocks(clinic, after, 100).await.unwrap();
        let Some(last) = blocks.last() else { break };
        after = last.head().unwrap().0;
        for b in &blocks {
            lags.extend(b.entries.iter().map(|e| (b.sealed_at - e.at).to_std().unwrap_or_default()));
        }
    }
    let (p50, p99, _, max) = vcare_tests::measure::stats(lags);
    println!(
        "audit sealing, one clinic: {total} records written in {:.1} s ({:.0}/s, 32 writers), all sealed {:.1} s after the first; \
         sealing lag p50 {}, p99 {}, max {}",
        wrote.as_secs_f64(),
        total as f64 / wrote.as_secs_f64(),
        all_sealed.as_secs_f64(),
        vcare_tests::measure::ms(p50),
        vcare_tests::measure::ms(p99),
        vcare_tests::measure::ms(max),
    );
    stack.stop().await;
}
