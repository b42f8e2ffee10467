//! Notifications through the local gateway: accept with idempotency,
//! validation, sealed personal data at rest, masked reads.

use serde_json::{Value, json};
use vcare_tests::TestStack;
use vcare_tests::comms::{EMAIL, PHONE};

struct Api {
    stack: TestStack,
    service: String,
}

fn request() -> Value {
    json!({
        "recipient": {"userId": "u-pat", "phone": PHONE, "email": EMAIL, "locale": "fa-AF", "timezone": "Asia/Kabul",
                      "pushTokens": [{"platform": "fcm", "token": "fcm-token-abcdef"}]},
        "channels": ["sms", "push", "email"],
        "template": "appointment-reminder",
        "variables": {"when": "Tuesday 10:00", "joinUrl": "https://meet.vcare.local/secretroomname"},
    })
}

impl Api {
    /// The API without the queue's pollers: these tests read notifications
    /// as accepted, before any dispatch (dispatch.rs sends them).
    async fn start() -> Self {
        let template = vcare_tests::root().join("infra/template.yaml");
        let stack = TestStack::start_with(template, &vcare_local::Registry::vcare(), |c| c.event_sources = false).await;
        let service = stack.token("svc-scheduler", Some("c1"), &["service"]);
        Self { stack, service }
    }

    async fn accept(&self, key: Option<&str>, body: &Value, token: &str) -> (u16, Value) {
        let (status, _, body) = vcare_tests::comms::post_notification(&self.stack, token, key, body).await;
        (status, body)
    }

    async fn items(&self) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let ddb = aws_sdk_dynamodb::Client::new(&self.stack.sdk);
        let table = self.stack.gateway.resource("Table").unwrap().reference.clone();
        ddb.scan().table_name(table).send().await.unwrap().items.unwrap_or_default()
    }

    async fn count(&self, kind: &str) -> usize {
        self.items()
            .await
            .iter()
            .filter(|i| i.get("kind").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(kind))
            .count()
    }
}

#[tokio::test]
async fn accept_is_idempotent_per_key() {
    let api = Api::start().await;
    let (status, first) = api.accept(Some("k-1"), &request(), &api.service).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["status"], "queued");
    let id = first["notificationId"].as_str().unwrap();
    assert!(id.starts_with("ntf_"));
    let (status, again) = api.accept(Some("k-1"), &request(), &api.service).await;
    assert_eq!((status, &again), (202, &first), "the same key and body: the first response");
    let mut other = request();
    other["priority"] = json!("high");
    let (status, problem) = api.accept(Some("k-1"), &other, &api.service).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(api.count("notification").await, 1);

    // Eight at once with one key: one notification; the rest see it or are told it is in progress.
    let body = request();
    let calls: Vec<_> = (0..8).map(|_| api.accept(Some("k-race"), &body, &api.service)).collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await);
    }
    let mut concurrent = Vec::new();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (http, base, token, body) =
                (api.stack.http.clone(), api.stack.base.clone(), api.service.clone(), body.clone());
            tokio::spawn(async move {
                let r = http
                    .post(format!("{base}/v1/communication/notifications"))
                    .bearer_auth(token)
                    .header("idempotency-key", "k-par")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    for h in handles {
        concurrent.push(h.await.unwrap());
    }
    for (label, set) in [("sequential", &results), ("parallel", &concurrent)] {
        let ids: std::collections::HashSet<_> = set
            .iter()
            .filter(|(s, _)| *s == 202)
            .map(|(_, b)| b["notificationId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 1, "{label}: {set:?}");
        assert!(set.iter().all(|(s, _)| *s == 202 || *s == 409), "{label}: {set:?}");
    }
    assert_eq!(api.count("notification").await, 3);
    api.stack.stop().await;
}

#[tokio::test]
async fn bad_requests_are_problems_and_write_nothing() {
    let api = Api::start().await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = request();
        f(&mut b);
        b
    };
    let long_key = "k".repeat(129);
    let cases: Vec<(&str, Option<&str>, Value, u16)> = vec![
        ("no key", None, request(), 400),
        ("empty key", Some(""), request(), 400),
        ("key too long", Some(&long_key), request(), 400),
        ("bad phone", Some("a"), with(&|b| b["recipient"]["phone"] = json!("0701234567")), 400),
        ("bad email", Some("b"), with(&|b| b["recipient"]["email"] = json!("zahra@")), 400),
        ("unknown channel", Some("c"), with(&|b| b["channels"] = json!(["fax"])), 400),
        ("no channels", Some("d"), with(&|b| b["channels"] = json!([])), 400),
        ("template and content", Some("e"), with(&|b| b["content"] = json!({"body": "hi"})), 400),
        ("missing variable", Some("f"), with(&|b| b["variables"] = json!({})), 422),
        ("unknown template", Some("g"), with(&|b| b["template"] = json!("no-such-template")), 422),
        ("past sendAt", Some("h"), with(&|b| b["sendAt"] = json!("2020-01-01T00:00:00Z")), 422),
        (
            "email channel without email",
            Some("i"),
            with(&|b| {
                b["recipient"].as_object_mut().unwrap().remove("email");
            }),
            422,
        ),
        ("bad zone", Some("j"), with(&|b| b["recipient"]["timezone"] = json!("Kabul")), 400),
        // This stack configures e-mail only (EmailFrom: SES): SMS and push have no provider.
        ("no provider for any channel", Some("o"), with(&|b| b["channels"] = json!(["sms", "push"])), 422),
        ("vcare's own category", Some("p"), with(&|b| b["category"] = json!("sms-answers")), 400),
        (
            "replies without sms",
            Some("q"),
            with(&|b| {
                b["channels"] = json!(["email"]);
                b["replies"] = json!(["confirm"]);
            }),
            422,
        ),
        ("unknown reply", Some("r"), with(&|b| b["replies"] = json!(["maybe"])), 400),
        ("unknown field", Some("k"), with(&|b| b["cc"] = json!("x")), 400),
        (
            "huge body",
            Some("l"),
            with(&|b| {
                b.as_object_mut().unwrap().remove("template");
                b.as_object_mut().unwrap().remove("variables");
                b["content"] = json!({"body": "x".repeat(4001)});
            }),
            400,
        ),
    ];
    for (what, key, body, want) in cases {
        let (status, problem) = api.accept(key, &body, &api.service).await;
        assert_eq!(status, want, "{what}: {problem}");
        assert!(problem["detail"].is_string(), "{what}");
        let text = problem.to_string();
        assert!(
            !text.contains("701234567") && !text.contains("zahra"),
            "{what}: the problem echoes personal data: {text}"
        );
    }
    let (_, unroutable) =
        api.accept(Some("o2"), &with(&|b| b["channels"] = json!(["sms", "push"])), &api.service).await;
    assert_eq!(unroutable["detail"], "channels: no provider is configured for sms, push", "{unroutable}");
    let (_, missing) = api.accept(Some("m"), &with(&|b| b["variables"] = json!({"joinUrl": "x"})), &api.service).await;
    assert!(missing["detail"].as_str().unwrap().contains("when"), "{missing}");
    let (status, _) = api.accept(Some("n"), &request(), &api.stack.token("u-pat", Some("c1"), &["patient"])).await;
    assert_eq!(status, 403, "patients do not send notifications");
    assert_eq!(api.count("notification").await, 0);
    assert_eq!(api.count("idempotency").await, 0);
    api.stack.stop().await;
}

#[tokio::test]
async fn personal_data_is_sealed_at_rest_and_masked_when_read() {
    let api = Api::start().await;
    let (status, accepted) = api.accept(Some("k-pii"), &request(), &api.service).await;
    assert_eq!(status, 202);
    let id = accepted["notificationId"].as_str().unwrap().to_owned();

    // Nothing of the recipient or the message is readable in any item.
    let raw = format!("{:?}", api.items().await);
    for secret in
        [PHONE, "701234567", EMAIL, "zahra", "fcm-token-abcdef", "secretroomname", "Tuesday 10:00", "مشاوره تصویری"]
    {
        assert!(!raw.contains(secret), "{secret} is stored in clear");
    }
    let items = api.items().await;
    let item = items
        .iter()
        .find(|i| i.get("kind").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("notification"))
        .unwrap();
    assert!(item["sealedRecipient"].as_s().unwrap().starts_with("v1."));
    assert!(item["sealedMessages"].as_s().unwrap().starts_with("v1."));

    // The code that sends can open it; moved to another record it does not open.
    let env = api.stack.gateway.function("NotificationCreateFunction").unwrap().def.environment.clone();
    let comms = vcare_comms::Notifications::from_env(&vcare_runtime::Env::from_map(env), &api.stack.sdk).unwrap();
    let (n, _) = comms.store.get("c1", &id).await.unwrap().unwrap();
    let recipient = comms.open_recipient(&n).await.unwrap();
    assert_eq!(recipient.phone.as_deref(), Some(PHONE));
    let messages = comms.open_messages(&n).await.unwrap();
    let sms = &messages[&vcare_domain::notification::Channel::Sms];
    assert!(
        sms.body.contains("Tuesday 10:00") && sms.body.contains("secretroomname") && sms.body.contains("مشاوره تصویری")
    );
    assert!(messages[&vcare_domain::notification::Channel::Email].subject.is_some());
    let mut moved = n.clone();
    moved.notification_id = "ntf_other".into();
    assert!(comms.open_recipient(&moved).await.is_err(), "bound to its record");
    let mut other_clinic = n.clone();
    other_clinic.clinic_id = "c2".into();
    assert!(comms.open_recipient(&other_clinic).await.is_err(), "bound to its clinic");

    // GET: masked, same clinic only, staff and services only.
    let path = format!("{}/v1/communication/notifications/{id}", api.stack.base);
    let (status, _, view) = api.stack.send(api.stack.http.get(&path).bearer_auth(&api.service)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "queued");
    assert_eq!(
        view["recipient"],
        json!({"userId": "u-pat", "phone": "+93******567", "email": "z***@example.org", "pushTokens": 1, "locale": "fa-AF"})
    );
    assert_eq!(view["attempts"], json!([]));
    for (who, token) in [
        ("another clinic", api.stack.token("svc-scheduler", Some("c2"), &["service"])),
        ("a patient", api.stack.token("u-pat", Some("c1"), &["patient"])),
    ] {
        let (status, _, _) = api.stack.send(api.stack.http.get(&path).bearer_auth(token)).await;
        assert_eq!(status, 404, "{who}");
    }

    // The accepted event carries no personal data (checked above with every item).
    let events: Vec<Value> = items
        .iter()
        .filter(|i| i.get("kind").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("outbox"))
        .map(|i| serde_json::from_str(i["event"].as_s().unwrap()).unwrap())
        .collect();
    assert_eq!(events.iter().filter(|e| e["type"] == "communication.notification.accepted").count(), 1);
    api.stack.stop().await;
}

/// Honest answers under load (issue 15): many accepts at once through the
/// gateway. None is a 500; a 503 means nothing was written for its key,
/// and every 202 was written. `VCARE_LOAD_ACCEPTS` (default 200).
#[tokio::test]
async fn concurrent_accepts_answer_202_with_what_was_written_or_503_with_nothing() {
    let api = Api::start().await;
    let n: usize = std::env::var("VCARE_LOAD_ACCEPTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let calls = (0..n).map(|i| {
        let (api, key) = (&api, format!("k-load-{i}"));
        async move {
            let (status, out) = api.accept(Some(&key), &request(), &api.service).await;
            (key, status, out)
        }
    });
    let answers = vcare_tests::join_all(calls).await;
    let env = api.stack.gateway.function("NotificationCreateFunction").unwrap().def.environment.clone();
    let ddb = aws_sdk_dynamodb::Client::new(&api.stack.sdk);
    let mut counts = std::collections::BTreeMap::new();
    for (key, status, out) in &answers {
        *counts.entry(*status).or_insert(0) += 1;
        assert!(matches!(status, 202 | 503), "{key}: {status} {out}");
        let pk = format!("IDEMP#c1#{}", vcare_comms::sha256_hex(key.as_bytes()));
        let got = ddb
            .get_item()
            .table_name(&env["TABLE_NAME"])
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("IDEMP".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        match status {
            202 => {
                let record = got.item.unwrap_or_else(|| panic!("{key}: 202 but nothing written"));
                assert_eq!(record["notificationId"].as_s().unwrap(), out["notificationId"].as_str().unwrap());
            }
            _ => assert!(got.item.is_none(), "{key}: 503 although the accept was written"),
        }
    }
    println!("{n} concurrent accepts: {counts:?}");
    api.stack.stop().await;
}
