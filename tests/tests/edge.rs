//! The HTTP edge's holes found from outside (issue 15), each through the
//! local gateway with tokens its authorizer accepts: roles and clinics are
//! read exactly from the verified token, a repeated member is refused, and
//! headers are capped as API Gateway caps them.

use serde_json::{Value, json};
use vcare_tests::TestStack;
use vcare_tests::measure::doctor_room;

async fn call(stack: &TestStack, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", stack.base);
    let request = match method {
        "GET" => stack.http.get(url),
        _ => stack.http.post(url).json(&body.unwrap_or(json!({}))),
    };
    let (status, _, out) = stack.send(request.bearer_auth(token)).await;
    (status, out)
}

#[tokio::test]
async fn roles_count_only_as_whole_elements_of_realm_access_roles() {
    let stack = TestStack::start().await;
    let room = doctor_room(&stack, "c1", "apt-edge-roles").await;
    let path = format!("/v1/virtual-care/rooms/{}", room["roomId"].as_str().unwrap());
    let as_user = |roles: &str| stack.token_with(&format!(r#""sub":"u-x","clinic_id":"c1",{roles}"#));

    // The control: a real service token gets the doctor's token, a real
    // clinic-admin ends rooms (so the refusals below are the roles' doing).
    let service = as_user(r#""realm_access":{"roles":["service"]}"#);
    let (status, out) =
        call(&stack, "POST", &format!("{path}/tokens"), &service, Some(json!({"userId": "u-doc"}))).await;
    assert_eq!(status, 201, "{out}");

    for (roles, why) in [
        (r#""realm_access":{"roles":["read-only service"]}"#, "one role with a space"),
        (r#""realm_access":{"roles":["offline_access"]},"roles":["service"]"#, "a top-level roles claim"),
        (r#""realm_access":{"roles":["patient"],"aroles":"[service]"}"#, "a member named like roles"),
        (r#""realm_access":{"roles":"service"}"#, "roles as a string"),
    ] {
        let (status, out) =
            call(&stack, "POST", &format!("{path}/tokens"), &as_user(roles), Some(json!({"userId": "u-doc"}))).await;
        assert_eq!(status, 404, "{why}: another's token must not be issued: {out}");
    }
    let (status, _) = call(
        &stack,
        "POST",
        &format!("{path}/end"),
        &as_user(r#""realm_access":{"roles":["not clinic-admin"]}"#),
        None,
    )
    .await;
    assert_eq!(status, 404, "'not clinic-admin' does not end a room");
    let (status, _) = call(&stack, "GET", &path, &as_user(r#""realm_access":{"roles":["former doctor"]}"#), None).await;
    assert_eq!(status, 404, "'former doctor' does not read a room it is not listed in");
    let doctor = stack.token("u-doc", Some("c1"), &["doctor"]);
    let (_, now) = call(&stack, "GET", &path, &doctor, None).await;
    assert_eq!(now["status"], "scheduled", "nothing ended it");

    let admin = as_user(r#""realm_access":{"roles":["clinic-admin"]}"#);
    let (status, out) = call(&stack, "POST", &format!("{path}/end"), &admin, None).await;
    assert_eq!(status, 200, "{out}");
    stack.stop().await;
}

#[tokio::test]
async fn a_clinic_is_a_string_of_its_alphabet_and_a_repeated_member_is_refused() {
    let stack = TestStack::start().await;
    let history = "/v1/virtual-care/history";
    let roles = r#""realm_access":{"roles":["doctor"]}"#;
    for clinic in ["null", "[\"c1\"]", "42", "true", "\"\"", "{\"id\":\"c1\"}", "\"c1 c2\""] {
        let token = stack.token_with(&format!(r#""sub":"u-doc","clinic_id":{clinic},{roles}"#));
        let (status, out) = call(&stack, "GET", history, &token, None).await;
        assert_eq!(status, 403, "clinic_id {clinic}: {out}");
        assert_eq!(out["status"], 403);
    }
    let (status, _) = call(&stack, "GET", history, &stack.token_with(&format!(r#""sub":"u-doc",{roles}"#)), None).await;
    assert_eq!(status, 403, "no clinic");
    let (status, _) =
        call(&stack, "GET", history, &stack.token_with(&format!(r#""sub":"u-doc","clinic_id":"c1",{roles}"#)), None)
            .await;
    assert_eq!(status, 200, "the control");

    // Two clinic_ids (a reader taking the last would be in c1): refused.
    let twice = stack.token_with(&format!(r#""sub":"u-doc","clinic_id":"c2","clinic_id":"c1",{roles}"#));
    let (status, out) = call(&stack, "GET", history, &twice, None).await;
    assert_eq!(status, 401, "{out}");
    let nested = stack.token_with(r#""sub":"u-doc","clinic_id":"c1","realm_access":{"roles":[],"roles":["doctor"]}"#);
    assert_eq!(call(&stack, "GET", history, &nested, None).await.0, 401);
    stack.stop().await;
}

#[tokio::test]
async fn request_headers_are_capped_as_api_gateway_caps_them() {
    let stack = TestStack::start().await;
    let get = |size: usize| stack.http.get(format!("{}/health", stack.base)).header("x-padding", "a".repeat(size));
    let (status, _, _) = stack.send(get(8 * 1024)).await;
    assert_eq!(status, 200, "8 KiB of headers pass");
    let (status, _, out) = stack.send(get(11 * 1024)).await;
    assert_eq!(status, 431, "{out}");
    assert_eq!(out["message"], "Request Header Fields Too Large");
    let (status, _, _) = stack.send(get(200 * 1024)).await;
    assert_eq!(status, 431);
    stack.stop().await;
}

#[tokio::test]
async fn a_web_push_endpoint_must_be_a_listed_push_service_over_https() {
    use vcare_tests::comms::{Providers, accept, body, stack_tuned};
    let p = Providers::start().await;
    // The template's default: no loopback push service.
    let stack = stack_tuned(&p, "gateway", "ses", |c| {
        c.parameters.insert("PushAllowLoopback".into(), "false".into());
    })
    .await;
    let token = stack.token("svc", Some("c1"), &["service"]);
    let with_endpoint = |endpoint: &str| {
        let mut b = body(&["sms"], "high");
        let sub = json!({"endpoint": endpoint, "keys": {"p256dh": "BAAA", "auth": "AAAA"}}).to_string();
        b["recipient"]["pushTokens"] = json!([{"platform": "webpush", "token": sub}]);
        b
    };
    for (i, endpoint) in [
        format!("{}/anything", p.webpush.url),
        "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next".to_owned(),
        "http://fcm.googleapis.com/fcm/send/x".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "https://push.attacker.example/x".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        let key = format!("k-ssrf-{i}");
        let (status, kind, out) =
            vcare_tests::comms::post_notification(&stack, &token, Some(&key), &with_endpoint(endpoint)).await;
        assert_eq!((status, kind.as_str()), (400, "application/problem+json"), "{endpoint}: {out}");
        assert!(out["detail"].as_str().unwrap().contains("pushTokens[0].token: endpoint"), "{out}");
        assert!(!out.to_string().contains("127.0.0.1") && !out.to_string().contains("attacker"), "no echo: {out}");
    }
    // A listed push service is accepted (sent by SMS here: nothing leaves the machine).
    accept(&stack, &with_endpoint("https://fcm.googleapis.com/fcm/send/abc"), "k-ssrf-ok").await;
    assert!(p.webpush.requests().is_empty(), "the loopback push service was never called");
    stack.stop().await;
}
