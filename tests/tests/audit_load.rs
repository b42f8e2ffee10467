//! A busy clinic through the local gateway: many accepts at once, each
//! answered honestly (202 with its record, or 503 with nothing: never a
//! 500), each 202's access recorded, and every record sealed by the
//! sequencer (the audit table's stream, the only worker polling here) into
//! a chain that verifies. `VCARE_LOAD_ACCEPTS` (default 600) sets the load.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use serde_json::{Value, json};
use vcare_tests::TestStack;
use vcare_tests::audit::{chain, records};
use vcare_tests::comms::{EMAIL, PHONE, post_notification};
use vcare_tests::measure::{ms, stats};

fn request() -> Value {
    json!({
        "recipient": {"userId": "u-pat", "phone": PHONE, "email": EMAIL, "locale": "fa-AF"},
        "channels": ["sms", "email"],
        "template": "appointment-reminder",
        "variables": {"when": "Tuesday 10:00", "joinUrl": "https://meet.vcare.local/x"},
    })
}

/// Only the sequencer polls: nothing but the accepts and their seals loads the endpoint.
async fn stack() -> TestStack {
    let template = vcare_tests::root().join("infra/template.yaml");
    TestStack::start_with(template, &vcare_local::Registry::vcare(), |c| {
        c.only_sources = Some(vec!["AuditSealFunction".into()]);
    })
    .await
}

/// `n` accepts at once across `clinics`: per clinic, the ids of its 202s.
async fn burst(stack: &TestStack, clinics: &[String], n: usize) -> BTreeMap<String, Vec<String>> {
    let tokens: Vec<String> = clinics.iter().map(|c| stack.token("svc-load", Some(c), &["service"])).collect();
    let began = Instant::now();
    let calls = (0..n).map(|i| {
        let (clinic, token) = (&clinics[i % clinics.len()], &tokens[i % clinics.len()]);
        async move {
            let t = Instant::now();
            let (status, _, out) = post_notification(stack, token, Some(&format!("k-load-{i}")), &request()).await;
            (clinic.clone(), status, out, t.elapsed())
        }
    });
    let answers = vcare_tests::join_all(calls).await;
    let took = began.elapsed();
    let mut statuses = BTreeMap::new();
    let mut accepted: BTreeMap<String, Vec<String>> = clinics.iter().map(|c| (c.clone(), Vec::new())).collect();
    let mut latencies = Vec::new();
    for (clinic, status, out, latency) in answers {
        *statuses.entry(status).or_insert(0) += 1;
        assert!(matches!(status, 202 | 503), "{clinic}: {status} {out}");
        if status == 202 {
            accepted.get_mut(&clinic).unwrap().push(out["notificationId"].as_str().unwrap().to_owned());
            latencies.push(latency);
        }
    }
    let (p50, p99, _, _) = stats(latencies.clone());
    println!(
        "{n} accepts at once over {} clinic(s): {statuses:?} in {:.1} s ({:.0} accepted/s), p50 {}, p99 {}",
        clinics.len(),
        took.as_secs_f64(),
        latencies.len() as f64 / took.as_secs_f64(),
        ms(p50),
        ms(p99),
    );
    accepted
}

/// Every 202 of the clinic has its record, and every record is sealed into
/// a chain that verifies (`chain` waits for the sequencer and checks it).
async fn audited_and_sealed(stack: &TestStack, clinic: &str, accepted: &[String]) {
    let written: HashSet<String> = records(stack, clinic)
        .await
        .into_iter()
        .filter(|r| r.action == "notification.create")
        .map(|r| r.subject_id)
        .collect();
    for id in accepted {
        assert!(written.contains(id), "{clinic}: {id} was accepted without its record");
    }
    let began = Instant::now();
    let sealed = chain(stack, clinic).await;
    assert_eq!(sealed.len(), written.len(), "{clinic}: one place in the chain per record");
    let ids: HashSet<&str> = sealed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), sealed.len(), "{clinic}: no record sealed twice");
    println!("{clinic}: {} records, all sealed {:.1} s after the burst", sealed.len(), began.elapsed().as_secs_f64());
}

fn load() -> usize {
    std::env::var("VCARE_LOAD_ACCEPTS").ok().and_then(|v| v.parse().ok()).unwrap_or(600)
}

/// One clinic's burst, then the same load over ten clinics (one after the
/// other: the loopback endpoint is one process, and two bursts at once
/// would measure each other).
#[tokio::test]
async fn bursts_for_one_clinic_and_across_ten_are_each_answered_audited_and_sealed() {
    let stack = stack().await;
    let busy = vec!["c-busy".to_owned()];
    let accepted = burst(&stack, &busy, load()).await;
    audited_and_sealed(&stack, "c-busy", &accepted["c-busy"]).await;
    let network: Vec<String> = (0..10).map(|i| format!("c-net-{i}")).collect();
    let accepted = burst(&stack, &network, load()).await;
    for clinic in &network {
        audited_and_sealed(&stack, clinic, &accepted[clinic]).await;
    }
    stack.stop().await;
}
