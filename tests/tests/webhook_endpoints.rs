//! A clinic's webhook endpoints (issue 22) through the local gateway: made
//! by clinic-admins only, the secret shown once and kept sealed, every bad
//! URL (plain http, private, loopback, metadata, unresolvable, over-long)
//! and unknown event type a 400 that keeps nothing, the clinic's limit a
//! 422, another clinic's endpoint not there.

use serde_json::{Value, json};
use vcare_local::Registry;
use vcare_tests::{TestStack, root};

const PATH: &str = "/v1/webhooks/endpoints";

async fn stack(allow_loopback: bool) -> TestStack {
    TestStack::start_with(root().join("infra/template.yaml"), &Registry::vcare(), move |c| {
        c.event_sources = false;
        c.parameters.insert("WebhookAllowLoopback".into(), allow_loopback.to_string());
        c.parameters.insert("WebhookMaxEndpoints".into(), "2".into());
    })
    .await
}

async fn create(stack: &TestStack, token: &str, body: &Value) -> (u16, Value) {
    let (status, _, out) =
        stack.send(stack.http.post(format!("{}{PATH}", stack.base)).bearer_auth(token).json(body)).await;
    (status, out)
}

async fn listed(stack: &TestStack, token: &str) -> Vec<Value> {
    let (status, _, out) = stack.get(PATH, Some(token)).await;
    assert_eq!(status, 200, "{out}");
    out["items"].as_array().unwrap().clone()
}

#[test]
fn the_event_types_an_endpoint_may_name_are_the_catalogues() {
    let mut catalogue: Vec<String> = std::fs::read_dir(root().join("events/catalogue"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".schema.json").map(str::to_owned))
        // vcare's own events (appointment.* are the scheduling system's, consumed).
        .filter(|t| !t.starts_with("appointment."))
        .collect();
    catalogue.sort();
    let mut types: Vec<String> = vcare_domain::webhooks::endpoint::EVENT_TYPES.iter().map(|t| t.to_string()).collect();
    types.sort();
    assert_eq!(types, catalogue);
}

#[tokio::test]
async fn admins_make_endpoints_whose_secret_is_shown_once_and_kept_sealed() {
    let stack = stack(true).await;
    let admin = stack.token("u-admin", Some("c1"), &["clinic-admin"]);
    let body = json!({"url": "http://127.0.0.1:9/hooks/vcare", "eventTypes": ["virtual_care.room.created"]});
    let (status, made) = create(&stack, &admin, &body).await;
    assert_eq!(status, 201, "{made}");
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{made}");
    assert_eq!(made["eventTypes"], json!(["virtual_care.room.created"]));
    assert_eq!(made["enabled"], true);
    let id = made["endpointId"].as_str().unwrap().to_owned();

    // Never shown again; sealed at rest.
    let items = listed(&stack, &admin).await;
    assert_eq!(items.len(), 1);
    assert!(items[0].get("secret").is_none() && !items[0].to_string().contains(&secret));
    let (status, _, one) = stack.get(&format!("{PATH}/{id}"), Some(&admin)).await;
    assert_eq!((status, one["endpointId"].as_str()), (200, Some(id.as_str())));
    assert!(!one.to_string().contains(&secret));
    assert!(!vcare_tests::comms::table_text(&stack).await.contains(&secret[6..]), "the secret is not in the table");

    // Who may: only the clinic's admins; another clinic's endpoint is not there.
    let doctor = stack.token("u-doc", Some("c1"), &["doctor"]);
    assert_eq!(create(&stack, &doctor, &body).await.0, 403);
    assert_eq!(stack.get(PATH, Some(&doctor)).await.0, 403);
    let theirs = stack.token("u-admin", Some("c2"), &["clinic-admin"]);
    assert_eq!(stack.get(&format!("{PATH}/{id}"), Some(&theirs)).await.0, 404);
    assert!(listed(&stack, &theirs).await.is_empty());
    let delete = |token: &str| stack.http.delete(format!("{}{PATH}/{id}", stack.base)).bearer_auth(token.to_owned());
    assert_eq!(stack.send(delete(&theirs)).await.0, 404);

    // The clinic's limit (2 here): the third is 422 and nothing is kept.
    assert_eq!(create(&stack, &admin, &body).await.0, 201);
    let (status, problem) = create(&stack, &admin, &body).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(listed(&stack, &admin).await.len(), 2);

    // Deleted: gone, and the place is free again.
    assert_eq!(stack.send(delete(&admin)).await.0, 204);
    assert_eq!(stack.get(&format!("{PATH}/{id}"), Some(&admin)).await.0, 404);
    assert_eq!(stack.send(delete(&admin)).await.0, 404);
    assert_eq!(create(&stack, &admin, &body).await.0, 201);

    // Each was recorded in the audit trail.
    let records = vcare_tests::audit::records(&stack, "c1").await;
    let made: Vec<_> = records.iter().filter(|r| r.action == "webhook.create").collect();
    assert!(made.iter().any(|r| r.subject_id == id), "the create names the endpoint");
    stack.stop().await;
}

#[tokio::test]
async fn bad_urls_and_event_types_are_400_and_keep_nothing() {
    let stack = stack(false).await;
    let admin = stack.token("u-admin", Some("c1"), &["clinic-admin"]);
    let room = ["virtual_care.room.created"];
    let long = format!("https://ehr.example/{}", "a".repeat(2100));
    for body in [
        json!({"url": "http://ehr.example/hook", "eventTypes": room}),
        json!({"url": "http://127.0.0.1:9/hook", "eventTypes": room}),
        json!({"url": "https://127.0.0.1/hook", "eventTypes": room}),
        json!({"url": "https://localhost/hook", "eventTypes": room}),
        json!({"url": "https://10.1.2.3/hook", "eventTypes": room}),
        json!({"url": "https://169.254.169.254/latest/meta-data/", "eventTypes": room}),
        json!({"url": "https://[::1]/hook", "eventTypes": room}),
        // 6to4 around the metadata address and a private one; Teredo.
        json!({"url": "https://[2002:a9fe:a9fe::1]/", "eventTypes": room}),
        json!({"url": "https://[2002:0a01:0203::1]/hook", "eventTypes": room}),
        json!({"url": "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", "eventTypes": room}),
        json!({"url": "https://no-such-host.invalid/hook", "eventTypes": room}),
        json!({"url": long, "eventTypes": room}),
        json!({"url": "https://user:pw@ehr.example/hook", "eventTypes": room}),
        json!({"url": "https://93.184.215.14/hook", "eventTypes": ["virtual_care.room.exploded"]}),
        json!({"url": "https://93.184.215.14/hook", "eventTypes": []}),
        json!({"url": "https://93.184.215.14/hook"}),
        json!({"url": "https://93.184.215.14/hook", "eventTypes": room, "secret": "mine"}),
        json!([1]),
    ] {
        let (status, problem) = create(&stack, &admin, &body).await;
        assert_eq!(status, 400, "{body}: {problem}");
        let text = problem.to_string();
        assert!(!text.contains("10.1.2.3") && !text.contains("user:pw"), "no value echoed: {text}");
    }
    assert!(listed(&stack, &admin).await.is_empty(), "nothing kept");
    stack.stop().await;
}
