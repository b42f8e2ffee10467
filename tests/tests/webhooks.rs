//! One webhook delivery (issue 22) against a stand-in endpoint: signed as
//! Standard Webhooks says (checked by the reference library from PyPI, not
//! by vcare's signer), answers mapped to what happens next, redirects not
//! followed, a slow endpoint cut at the timeout, and every way to point a
//! delivery at vcare's own network refused — in the URL, through DNS, or
//! by plain http.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vcare_domain::webhooks::{AddressRefusal, Secret};
use vcare_tests::root;
use vcare_tests::standins::{Reply, StandIn};
use vcare_webhooks::{Delivery, Outcome, Refusal, Sender, check_endpoint};

fn secret() -> Secret {
    Secret::from_bytes((0..32).map(|i| (i * 7 + 3) as u8).collect()).unwrap()
}

/// The reference library's verdict on a delivery as the endpoint got it.
fn verified(secret: &Secret, headers: &std::collections::HashMap<String, String>, body: &str) -> bool {
    use std::io::Write;
    let wanted = ["webhook-id", "webhook-timestamp", "webhook-signature"];
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(k, _)| wanted.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut child = std::process::Command::new(root().join(".venv/bin/python"))
        .arg(root().join("tests/python/webhook_check.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the test virtualenv's python");
    let given = json!({"secret": secret.reveal(), "headers": headers, "body": body});
    child.stdin.take().unwrap().write_all(given.to_string().as_bytes()).unwrap();
    child.wait_with_output().unwrap().status.success()
}

fn delivery<'a>(url: &'a str, secret: &'a Secret, body: &'a [u8]) -> Delivery<'a> {
    Delivery { url, secret, id: "msg_2fHq1YpTtqvmLzb1", timestamp: chrono::Utc::now().timestamp(), body }
}

#[tokio::test]
async fn deliveries_are_signed_as_the_standard_webhooks_library_verifies() {
    let endpoint = StandIn::start(Reply::json(204, Value::Null)).await;
    let sender = Sender::new(true, Duration::from_secs(5));
    let secret = secret();
    let body = json!({"specversion": "1.0", "id": "e1", "type": "virtual_care.room.created"}).to_string();
    let url = format!("{}/hooks/vcare", endpoint.url);
    assert!(!sender.is_made(), "no client until a delivery needs one");
    assert_eq!(sender.deliver(delivery(&url, &secret, body.as_bytes())).await, Outcome::Delivered(204));
    assert!(sender.is_made());
    let got = endpoint.requests();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.body, body);
    assert!(verified(&secret, &request.headers, &request.body), "the reference library accepts it");
    assert!(!verified(&secret, &request.headers, &format!("{body} ")), "and refuses a changed body");
    let other = Secret::from_bytes(vec![9; 32]).unwrap();
    assert!(!verified(&other, &request.headers, &request.body), "and another endpoint's secret");
}

#[tokio::test]
async fn answers_become_outcomes_redirects_are_not_followed_and_slow_endpoints_are_cut() {
    let target = StandIn::start(Reply::json(200, Value::Null)).await;
    let endpoint = StandIn::start(Reply::json(200, Value::Null)).await;
    let sender = Sender::new(true, Duration::from_secs(1));
    let (secret, body) = (secret(), b"{}".to_vec());
    let url = format!("{}/hook", endpoint.url);
    endpoint.script([
        Reply::json(503, json!({"error": "busy"})),
        Reply::json(410, Value::Null),
        Reply::json(302, Value::Null).header("location", &format!("{}/elsewhere", target.url)),
        Reply::json(200, Value::Null).after(Duration::from_secs(3)),
    ]);
    assert_eq!(
        sender.deliver(delivery(&url, &secret, &body)).await,
        Outcome::Failed { status: Some(503), reason: "answered 503".into() }
    );
    assert_eq!(sender.deliver(delivery(&url, &secret, &body)).await, Outcome::Gone);
    let redirected = sender.deliver(delivery(&url, &secret, &body)).await;
    assert!(matches!(redirected, Outcome::Failed { status: Some(302), .. }), "{redirected:?}");
    assert!(target.requests().is_empty(), "the redirect was not followed");
    let t = Instant::now();
    let slow = sender.deliver(delivery(&url, &secret, &body)).await;
    assert_eq!(slow, Outcome::Failed { status: None, reason: "no answer in time".into() });
    assert!(t.elapsed() < Duration::from_secs(2), "cut at the timeout: {:?}", t.elapsed());
}

#[tokio::test]
async fn private_loopback_metadata_and_unresolvable_endpoints_are_refused() {
    let refused = |r: Result<(), Refusal>| r.expect_err("refused");
    for (url, why) in [
        ("https://10.0.0.1/hook", Refusal::Address(AddressRefusal::Private)),
        ("https://192.168.1.20/hook", Refusal::Address(AddressRefusal::Private)),
        ("https://169.254.169.254/latest/meta-data/", Refusal::Address(AddressRefusal::LinkLocal)),
        ("https://[fd00:ec2::254]/", Refusal::Address(AddressRefusal::Private)),
        ("https://127.0.0.1/hook", Refusal::Address(AddressRefusal::Loopback)),
        ("https://[::1]/hook", Refusal::Address(AddressRefusal::Loopback)),
        ("https://[::ffff:10.0.0.1]/hook", Refusal::Address(AddressRefusal::Private)),
        // A name is judged by what it resolves to.
        ("https://localhost/hook", Refusal::Address(AddressRefusal::Loopback)),
        ("https://no-such-host.invalid/hook", Refusal::Unresolvable),
        ("http://127.0.0.1/hook", Refusal::Url("url: https only")),
        ("https://user:pw@ehr.example/hook", Refusal::Url("url: no user or password in it")),
    ] {
        assert_eq!(refused(check_endpoint(url, false).await), why, "{url}");
    }
    // Loopback, where allowed (the local stack), and plain http only to it.
    assert_eq!(check_endpoint("http://127.0.0.1:9/hook", true).await, Ok(()));
    assert_eq!(check_endpoint("http://localhost:9/hook", true).await, Ok(()));
    assert_eq!(refused(check_endpoint("http://10.0.0.1/hook", true).await), Refusal::Address(AddressRefusal::Private));

    // A delivery checks again when it connects: a name that now resolves to
    // loopback is refused before anything is sent.
    let endpoint = StandIn::start(Reply::json(200, Value::Null)).await;
    let port = endpoint.url.rsplit(':').next().unwrap();
    let sender = Sender::new(false, Duration::from_secs(2));
    let secret = secret();
    for url in [format!("https://localhost:{port}/hook"), format!("https://127.0.0.1:{port}/hook")] {
        let outcome = sender.deliver(delivery(&url, &secret, b"{}")).await;
        assert!(matches!(outcome, Outcome::Refused(_)), "{url}: {outcome:?}");
    }
    assert!(endpoint.requests().is_empty(), "nothing reached the loopback endpoint");
}
