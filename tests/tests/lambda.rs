//! The real binaries as Lambda runs them: `main.rs`, the runtime loop and
//! the logging setup, under an emulated Lambda Runtime API
//! (vcare_tests::lambda) against the loopback AWS endpoint.

use std::time::Duration;

use serde_json::Value;
use vcare_tests::lambda::{Process, RuntimeApi, binary};
use vcare_tests::{TestStack, root};

fn sample(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("events").join(path)).unwrap()).unwrap()
}

/// Lambda's JSON logs: every line printed while an invocation runs carries
/// its request id and X-Ray trace id, so one query finds everything one
/// request did; lines of separate invocations never mix ids.
#[tokio::test]
async fn every_log_line_of_an_invocation_names_its_request_and_trace() {
    let stack = TestStack::start().await;
    let mut environment = stack.gateway.function("HealthFunction").unwrap().def.environment.clone();
    // A table that is not there: readiness fails and says so in a log line.
    environment.insert("TABLE_NAME".into(), "vcare-no-such-table".into());
    let api = RuntimeApi::start().await;
    let mut process = Process::spawn(&binary("health"), &api, &environment);
    process.ready(&api, Duration::from_secs(20)).await.unwrap();

    let ready = sample("health/ready.json");
    let mut invocations = Vec::new();
    for n in 1..=2 {
        let request = format!("req-{n}-0c8f");
        let trace = format!("Root=1-6744a0b2-00000000000000000000000{n};Parent=53995c3f42cd8ad8;Sampled=1");
        let out = api.invoke(ready.clone(), &request, &trace, Duration::from_secs(20)).await;
        let answer = out.result.expect("an HTTP answer, not a failed invocation");
        assert_eq!(answer["statusCode"], 503, "{answer}");
        invocations.push((request, trace));
    }
    stack.stop().await;

    let lines: Vec<Value> = process
        .stop()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("a log line that is not JSON: {l}")))
        .collect();
    for (request, trace) in &invocations {
        let ours: Vec<&Value> = lines
            .iter()
            .filter(|l| l["spans"].as_array().is_some_and(|s| s.iter().any(|s| s["requestId"] == **request)))
            .collect();
        assert!(!ours.is_empty(), "{request} logged its failed check: {lines:#?}");
        for line in ours {
            let span = line["spans"].as_array().unwrap().iter().find(|s| s["requestId"] == **request).unwrap();
            assert_eq!(span["xrayTraceId"], **trace, "{line}");
            assert_eq!(line["fields"]["message"], "readiness check failed", "{line}");
            assert!(line["level"].is_string(), "{line}");
        }
    }
    // And nothing printed during an invocation lacks its ids.
    let during = lines.iter().filter(|l| l["fields"]["message"] == "readiness check failed");
    assert!(during.clone().count() >= 2);
    assert!(during.into_iter().all(|l| l["spans"][0]["requestId"].is_string()));
}

/// A setting the function cannot start without fails the cold start: the
/// process ends before asking for work, and says which setting by name.
#[tokio::test]
async fn a_missing_setting_fails_the_cold_start_by_name() {
    let stack = TestStack::start().await;
    let mut environment = stack.gateway.function("TokenIssueFunction").unwrap().def.environment.clone();
    environment.remove("TABLE_NAME");
    stack.stop().await;
    let api = RuntimeApi::start().await;
    let mut process = Process::spawn(&binary("token-issue"), &api, &environment);
    let err = process.ready(&api, Duration::from_secs(20)).await.unwrap_err();
    assert!(err.starts_with("exited"), "{err}");
    let lines = process.stop();
    assert!(lines.iter().any(|l| l.contains("cold start failed") && l.contains("TABLE_NAME")), "{lines:?}");
}

/// Fault: KMS does not answer at cold start (token-issue decrypts the Jitsi
/// app secret there). The start fails within the SDK's bounded timeouts,
/// before asking for work (Lambda reports an init error; API Gateway
/// answers 5xx and the next request gets a fresh container), and the log
/// line says so without the ciphertext or any secret.
#[tokio::test]
async fn kms_down_at_cold_start_fails_the_start_quickly_and_quietly() {
    let stack = TestStack::start().await;
    let mut environment = stack.gateway.function("TokenIssueFunction").unwrap().def.environment.clone();
    stack.stop().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    environment.insert("AWS_ENDPOINT_URL_KMS".into(), format!("http://{closed}"));
    let api = RuntimeApi::start().await;
    let mut process = Process::spawn(&binary("token-issue"), &api, &environment);
    let err = process.ready(&api, Duration::from_secs(30)).await.unwrap_err();
    assert!(err.starts_with("exited"), "{err}");
    assert!(process.started.elapsed() < Duration::from_secs(15), "bounded by the SDK timeouts");
    let lines = process.stop();
    let failed = lines.iter().find(|l| l.contains("cold start failed")).unwrap_or_else(|| panic!("{lines:?}"));
    let ciphertext = &environment["JITSI_APP_SECRET_CIPHERTEXT"];
    for line in &lines {
        assert!(!line.contains(ciphertext.as_str()) && !line.contains(vcare_tests::JITSI_APP_SECRET), "{line}");
    }
    assert!(failed.to_lowercase().contains("kms") || failed.contains("decrypt"), "{failed}");
}
