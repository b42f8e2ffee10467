//! No personal data in logs: a full send (accept → queue → dispatch →
//! provider), a failing one, and a bad request, with every log line of
//! this process captured at the level production runs (info; debug for
//! vcare's own crates), then searched for the recipient's data.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use vcare_tests::comms::{EMAIL, PHONE, Providers, accept, body, wait_for};
use vcare_tests::standins::Reply;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_full_send_logs_none_of_the_recipients_data() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,vcare=debug,dispatch=debug,vcare_local=debug"))
        .with_writer(move || writer.clone())
        .init();

    let p = Providers::start().await;
    p.gateway.script([Reply::json(503, json!({"error": "busy"}))]);
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let id = accept(&stack, &body(&["sms", "email"], "high"), "k-logs").await;
    wait_for(&stack, &id, "sent", Duration::from_secs(30)).await;
    // Its delivery receipt, as the gateway posts it (the receipt carries the number).
    let sent = p.gateway.requests().into_iter().rfind(|r| r.json()["callbackUrl"].is_string()).unwrap().json();
    let receipt_url = sent["callbackUrl"].as_str().unwrap().replacen(vcare_tests::comms::PUBLIC_BASE, &stack.base, 1);
    let receipt = json!({"messageId": "gw-msg-1", "reference": sent["reference"], "status": "DELIVRD", "to": PHONE});
    let (status, _, _) = stack.send(stack.http.post(&receipt_url).json(&receipt)).await;
    assert_eq!(status, 204);
    wait_for(&stack, &id, "delivered", Duration::from_secs(10)).await;
    p.gateway.set_default(Reply::json(400, json!({"error": "invalid destination"})));
    let id = accept(&stack, &body(&["sms"], "high"), "k-logs-2").await;
    wait_for(&stack, &id, "failed", Duration::from_secs(30)).await;
    let mut bad = body(&["sms"], "high");
    bad["recipient"]["phone"] = json!("0701234567");
    let token = stack.token("svc", Some("c1"), &["service"]);
    vcare_tests::comms::post_notification(&stack, &token, Some("k-bad"), &bad).await;
    stack.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The capture works, and the sends were logged (by ids and reasons).
    assert!(
        logs.contains("gateway answered 503")
            && logs.contains("\"sent\"")
            && logs.contains("gateway refused: 400")
            && logs.contains("delivery receipt"),
        "{logs}"
    );
    for secret in [
        PHONE,
        "701234567",
        EMAIL,
        "zahra",
        "Tuesday 10:00",
        "secretroomname",
        "gw-key",
        "tw-token",
        "sg-key",
        "vn-sig-secret",
        &token,
    ] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
    }
}
