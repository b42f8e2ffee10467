//! `vcare-ops` against the local AWS endpoint: dead letters (list, dry
//! run, redrive), state lookups, Jitsi secret rotation, a consumer's replay.

use std::time::Duration;

use serde_json::{Value, json};
use vcare_local::Registry;
use vcare_tests::comms::{PHONE, accept, body};
use vcare_tests::rooms::{self, create_room, room_body};
use vcare_tests::{TestStack, domain_events, root};

async fn ops(stack: &TestStack, args: &[&str], stdin: &str) -> Result<Value, String> {
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let audit = stack.gateway.resource("AuditTable").unwrap().reference.clone();
    let topic = stack.gateway.resource("DomainEventsTopic").unwrap().reference.clone();
    let env = vcare_runtime::Env::from_map(
        [
            ("VCARE_TABLE".to_owned(), table),
            ("VCARE_AUDIT_TABLE".to_owned(), audit),
            ("VCARE_EVENTS_TOPIC".to_owned(), topic),
        ]
        .into_iter()
        .collect(),
    );
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    vcare_ops::run(&args, &env, &stack.sdk, &mut stdin.as_bytes())
        .await
        .map(|out| serde_json::from_str(&out).unwrap())
        .map_err(|e| e.to_string())
}

fn url(stack: &TestStack, id: &str) -> String {
    stack.gateway.resource(id).unwrap().reference.clone()
}

async fn quiet() -> TestStack {
    // No pollers: the queues hold what the test puts there.
    TestStack::start_with(root().join("infra/template.yaml"), &Registry::vcare(), |c| c.event_sources = false).await
}

#[tokio::test]
async fn dead_letters_are_listed_without_content_and_redriven_after_a_dry_run() {
    let stack = quiet().await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let (dlq, queue) = (url(&stack, "AppointmentEventsDLQ"), url(&stack, "AppointmentEventsQueue"));
    let letters = [
        json!({"specversion": "1.0", "id": "evt-1", "type": "appointment.created", "clinicid": "c1", "subject": "apt-1",
               "data": {"participants": [{"contact": {"phone": PHONE}}]}})
        .to_string(),
        "{not json".to_owned(),
    ];
    for l in &letters {
        sqs.send_message().queue_url(&dlq).message_body(l).send().await.unwrap();
    }
    let listed = ops(&stack, &["dlq", "list", &dlq], "").await.unwrap();
    let messages = listed["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{listed}");
    let text = listed.to_string();
    assert!(text.contains("evt-1") && text.contains("appointment.created"), "ids and types shown: {text}");
    assert!(!text.contains("701234567") && !text.contains("not json"), "no content shown: {text}");

    let dry = ops(&stack, &["dlq", "redrive", &dlq, &queue, "--dry-run"], "").await.unwrap();
    assert_eq!(dry["wouldMove"].as_array().unwrap().len(), 2, "{dry}");
    assert_eq!(
        ops(&stack, &["dlq", "list", &dlq], "").await.unwrap()["messages"].as_array().unwrap().len(),
        2,
        "still there"
    );

    let moved = ops(&stack, &["dlq", "redrive", &dlq, &queue], "").await.unwrap();
    assert_eq!(moved["moved"].as_array().unwrap().len(), 2, "{moved}");
    assert_eq!(ops(&stack, &["dlq", "list", &dlq], "").await.unwrap()["messages"].as_array().unwrap().len(), 0);
    let mut back = Vec::new();
    for _ in 0..5 {
        let got = sqs.receive_message().queue_url(&queue).max_number_of_messages(10).send().await.unwrap();
        back.extend(got.messages.unwrap_or_default().into_iter().map(|m| m.body().unwrap().to_owned()));
        if back.len() == 2 {
            break;
        }
    }
    back.sort();
    let mut want = letters.to_vec();
    want.sort();
    assert_eq!(back, want, "moved unchanged");
    stack.stop().await;
}

#[tokio::test]
async fn state_lookups_secret_rotation_and_outbox_replay() {
    let stack = quiet().await;
    // A notification, shown masked.
    let id = accept(&stack, &body(&["email"], "high"), "k-ops").await;
    let shown = ops(&stack, &["show", "notification", "c1", &id], "").await.unwrap();
    assert_eq!((shown["notificationId"].as_str(), shown["status"].as_str()), (Some(id.as_str()), Some("queued")));
    assert!(!shown.to_string().contains("701234567"), "masked: {shown}");
    assert!(ops(&stack, &["show", "notification", "c2", &id], "").await.is_err(), "another clinic's id: none");

    // A room, shown without names.
    let doctor = stack.token("u-doc", Some("c1"), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::hours(3);
    let body = room_body("apt-ops", start, &[rooms::doctor()]);
    let (status, room) = create_room(&stack, &doctor, &body).await;
    assert_eq!(status, 201);
    let room_id = room["roomId"].as_str().unwrap();
    let shown = ops(&stack, &["show", "room", "c1", room_id], "").await.unwrap();
    assert_eq!((shown["status"].as_str(), shown["version"].as_u64()), (Some("scheduled"), Some(1)));
    assert!(!shown.to_string().contains("Amini"));

    // A new Jitsi secret whose ciphertext is what the functions decrypt.
    let key = url(&stack, "DataKey");
    let rotated = ops(&stack, &["jitsi-secret", "rotate", "--key-id", &key], "").await.unwrap();
    let kms = aws_sdk_kms::Client::new(&stack.sdk);
    let plain =
        vcare_crypto::decrypt_secret(&kms, rotated["ciphertext"].as_str().unwrap(), "jitsi-app-secret").await.unwrap();
    assert_eq!(String::from_utf8(plain).unwrap(), rotated["secret"].as_str().unwrap());
    assert!(rotated["secret"].as_str().unwrap().len() >= 32);
    let given = "s".repeat(40);
    let from_stdin = ops(&stack, &["jitsi-secret", "rotate", "--key-id", &key, "--stdin"], &given).await.unwrap();
    assert_eq!(from_stdin["secret"], given.as_str());
    assert!(ops(&stack, &["jitsi-secret", "rotate", "--key-id", &key, "--stdin"], "short").await.is_err());
    let wrong_purpose =
        vcare_crypto::decrypt_secret(&kms, rotated["ciphertext"].as_str().unwrap(), "jitsi-webhook-secret").await;
    assert!(wrong_purpose.is_err(), "bound to its purpose");

    // The outbox of the last hour, published (the sweep, at once), then
    // replayed to the consumer that gets everything: the same event ids.
    let mut env = stack.gateway.function("OutboxRelayFunction").unwrap().def.environment.clone();
    env.insert("SWEEP_AFTER_SECONDS".into(), "0".into());
    let relay = outbox_relay::relay(&vcare_runtime::Env::from_map(env), &stack.sdk).unwrap();
    assert_eq!(relay.sweep().await.unwrap().published, 2);
    assert_eq!(domain_events(&stack, 2, Duration::from_secs(10)).await.len(), 2, "published once");
    let queue = url(&stack, "DomainEventsQueue");
    let (from, to) = (
        (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
        (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339(),
    );
    let args = ["events", "replay", "--consumer", &queue, "--from", &from, "--to", &to];
    let dry = ops(&stack, &[&args[..], &["--dry-run"]].concat(), "").await.unwrap();
    assert_eq!(dry["wouldReplay"], 2, "the notification's accepted event and the room's created event: {dry}");
    assert!(domain_events(&stack, 1, Duration::from_secs(2)).await.is_empty(), "a dry run publishes nothing");
    let done = ops(&stack, &args, "").await.unwrap();
    assert_eq!(done["replayed"], 2);
    let events = domain_events(&stack, 2, Duration::from_secs(10)).await;
    let mut got: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = done["eventIds"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let not_a_consumer = url(&stack, "DispatchQueue");
    for bad in [
        vec!["events", "replay", "--consumer", &queue, "--from", "yesterday", "--to", &to],
        vec!["events", "replay", "--consumer", &queue, "--from", &to, "--to", &from],
        vec!["events", "replay", "--from", &from, "--to", &to],
        vec!["events", "replay", "--consumer", &not_a_consumer, "--from", &from, "--to", &to],
        vec!["frobnicate"],
    ] {
        assert!(ops(&stack, &bad, "").await.is_err(), "{bad:?}");
    }
    stack.stop().await;
}

/// Operators are audited too: a lookup is recorded first, as their AWS
/// identity; `audit verify` walks a clinic's chain and says where a changed
/// record breaks it.
#[tokio::test]
async fn operators_lookups_are_audited_and_a_broken_chain_is_reported() {
    let stack = quiet().await;
    let doctor = stack.token("u-doc", Some("c-ops"), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::hours(3);
    let (status, room) = create_room(&stack, &doctor, &room_body("apt-ops-audit", start, &[rooms::doctor()])).await;
    assert_eq!(status, 201);
    let room_id = room["roomId"].as_str().unwrap();
    ops(&stack, &["show", "room", "c-ops", room_id], "").await.unwrap();
    let admin = stack.token("u-admin", Some("c-ops"), &["clinic-admin"]);
    let (status, _, page) = stack.get(&format!("/v1/audit?subjectId={room_id}"), Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    let newest = &page["items"][0];
    assert_eq!((newest["action"].as_str(), newest["actor"]["roles"].clone()), (Some("ops.show"), json!(["operator"])));
    assert!(newest["actor"]["id"].as_str().unwrap().starts_with("arn:aws:"), "the operator's AWS identity: {newest}");
    // room.create, ops.show and the admin's audit.read, once sealed (no
    // stream is read here: the sweep seals them).
    let unsealed = ops(&stack, &["audit", "verify", "--clinic", "c-ops"], "").await.unwrap();
    assert_eq!(unsealed, json!({"clinic": "c-ops", "records": 0, "awaitingSeal": 3, "intact": true}));
    vcare_tests::audit::seal_now(&stack).await;
    let records = vcare_tests::audit::chain(&stack, "c-ops").await;
    assert_eq!(records.len(), 3);
    let intact = ops(&stack, &["audit", "verify", "--clinic", "c-ops"], "").await.unwrap();
    assert_eq!(intact, json!({"clinic": "c-ops", "records": 3, "awaitingSeal": 0, "intact": true}));
    // Record 1, changed in place (what no function's IAM allows).
    vcare_tests::audit::tamper(&stack, &records[0].id, |r| r["action"] = json!("room.read")).await;
    let broken = ops(&stack, &["audit", "verify", "--clinic", "c-ops"], "").await.unwrap_err();
    assert!(broken.contains("record 1 was altered") && broken.contains(r#""intact":false"#), "{broken}");
    assert!(ops(&stack, &["audit", "verify"], "").await.is_err(), "--clinic is required");
    stack.stop().await;
}
