//! Events out (issue 6): the event catalogue, the outbox relay's stream
//! path and sweep, and the relay dying between publish and mark.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue as V;
use serde_json::{Value, json};
use vcare_local::Registry;
use vcare_tests::catalogue::validate;
use vcare_tests::proxy::CountingProxy;
use vcare_tests::rooms::{self, create_room, room_body};
use vcare_tests::{TestStack, domain_events, root};

/// vcare's own event types (what a webhook endpoint may ask for), and the
/// scheduling system's that vcare consumes.
fn types() -> Vec<&'static str> {
    let mut all = vcare_domain::webhooks::endpoint::EVENT_TYPES.to_vec();
    all.extend(["appointment.created", "appointment.cancelled"]);
    all
}

fn sample(kind: &str) -> Value {
    let path = root().join("events/catalogue").join(format!("{kind}.sample.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{kind} has a sample"))).unwrap()
}

#[test]
fn every_event_type_has_a_schema_and_a_sample_that_matches_it() {
    let types = types();
    for kind in &types {
        let s = sample(kind);
        assert_eq!(s["type"], *kind);
        validate(&s).unwrap_or_else(|e| panic!("{e}"));
    }
    let files = std::fs::read_dir(root().join("events/catalogue")).unwrap().count();
    assert_eq!(files, types.len() * 2, "a schema and a sample per type, nothing else");
    // The schemas refuse what they must: personal data in a room event, a
    // missing id, a wrong type, a bad time.
    let mut leaky = sample("virtual_care.room.created");
    leaky["data"]["participants"][0]["displayName"] = json!("Dr. Amini");
    let mut no_id = sample("communication.notification.sent");
    no_id.as_object_mut().unwrap().remove("id");
    let mut resourced = sample("virtual_care.consultation.started");
    resourced["source"] = json!("/vcare/communication");
    let mut bad_status = sample("communication.notification.delivered");
    bad_status["data"]["status"] = json!("read");
    let mut bad_time = sample("appointment.created");
    bad_time["data"]["scheduledStart"] = json!("tomorrow at ten");
    for (what, event) in [
        ("leaky", leaky),
        ("no id", no_id),
        ("wrong source", resourced),
        ("bad status", bad_status),
        ("bad time", bad_time),
    ] {
        assert!(validate(&event).is_err(), "{what} passed");
    }
    assert!(validate(&json!({"type": "virtual_care.room.renamed"})).is_err(), "an unknown type");
}

async fn outbox(stack: &TestStack) -> Vec<HashMap<String, V>> {
    let db = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let got = db
        .scan()
        .table_name(table)
        .filter_expression("kind = :k")
        .expression_attribute_values(":k", V::S("outbox".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    got.items.unwrap_or_default()
}

fn s(item: &HashMap<String, V>, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

/// A room's story through the API; the relay (on the stream) publishes
/// its events in order, with their outbox ids, each matching its schema.
#[tokio::test]
async fn the_relay_publishes_each_aggregates_events_in_order_with_their_ids() {
    let stack = TestStack::start().await;
    let doctor = stack.token("u-doc", Some("c1"), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::minutes(5);
    let body = room_body("apt-events", start, &[rooms::doctor(), rooms::patient()]);
    let (status, room) = create_room(&stack, &doctor, &body).await;
    assert_eq!(status, 201);
    let room_id = room["roomId"].as_str().unwrap();
    let rooms = format!("{}/v1/virtual-care/rooms/{room_id}", stack.base);
    let issue = json!({"issueType": "audio", "description": "echo"});
    assert_eq!(stack.send(stack.http.post(format!("{rooms}/issues")).bearer_auth(&doctor).json(&issue)).await.0, 202);
    assert_eq!(stack.send(stack.http.post(format!("{rooms}/end")).bearer_auth(&doctor).json(&json!({}))).await.0, 200);

    let events = domain_events(&stack, 3, Duration::from_secs(30)).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["virtual_care.room.created", "virtual_care.technical_issue.reported", "virtual_care.consultation.ended"]
    );
    for e in &events {
        validate(e).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!((e["subject"].as_str(), e["clinicid"].as_str()), (Some(room_id), Some("c1")));
    }
    let records = outbox(&stack).await;
    for e in &events {
        let record = records.iter().find(|r| s(r, "pk") == format!("OUTBOX#{}", e["id"].as_str().unwrap()));
        let record = record.unwrap_or_else(|| panic!("the event's id is its outbox record's: {e}"));
        assert_eq!(serde_json::from_str::<Value>(&s(record, "event")).unwrap(), *e, "published as written");
    }
    vcare_tests::eventually(Duration::from_secs(10), "every record marked published", || async {
        let published = |r: &HashMap<String, V>| s(r, "gsi1pk").starts_with("OUTBOX#PUBLISHED#");
        outbox(&stack).await.iter().all(|r| published(r) && r.contains_key("publishedAt")).then_some(())
    })
    .await;
    stack.stop().await;
}

/// DynamoDB-JSON (`{"S": ...}`) of an item, as a stream record carries it.
fn dynamodb_json(item: &HashMap<String, V>) -> Value {
    item.iter()
        .map(|(k, v)| {
            let v = match v {
                V::S(s) => json!({"S": s}),
                V::N(n) => json!({"N": n}),
                other => panic!("unexpected attribute {other:?}"),
            };
            (k.clone(), v)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn stream_event(records: &[(&str, &HashMap<String, V>)]) -> Value {
    json!({"Records": records.iter().map(|(seq, item)| json!({
        "eventID": format!("e{seq}"), "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "eu-central-1",
        "dynamodb": {"Keys": {"pk": {"S": s(item, "pk")}, "sk": {"S": "OUTBOX"}}, "NewImage": dynamodb_json(item),
                     "SequenceNumber": seq, "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "eventSourceARN": "arn:aws:dynamodb:eu-central-1:123456789012:table/t/stream/2026-11-23T00:00:00.000",
    })).collect::<Vec<_>>()})
}

/// The relay dies between publishing and marking (the mark fails): the
/// batch reports that record, Lambda hands it over again, it is published
/// again with the same id, and then marked. Nothing lost, one event.
#[tokio::test]
async fn a_relay_that_dies_between_publish_and_mark_publishes_again_with_the_same_id() {
    let stack =
        TestStack::start_with(root().join("infra/template.yaml"), &Registry::vcare(), |c| c.event_sources = false)
            .await;
    let token = stack.token("u-doc", Some("c1"), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::hours(2);
    let (status, _) = create_room(&stack, &token, &room_body("apt-relay", start, &[rooms::doctor()])).await;
    assert_eq!(status, 201);
    let records = outbox(&stack).await;
    assert_eq!(records.len(), 1);
    let event_id = s(&records[0], "pk").trim_start_matches("OUTBOX#").to_owned();

    let proxy = CountingProxy::start(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await;
    let env = stack.gateway.function("OutboxRelayFunction").unwrap().def.environment.clone();
    let relay =
        outbox_relay::relay(&vcare_runtime::Env::from_map(env), &vcare_tests::sdk_via(&proxy.url).await).unwrap();
    let event: aws_lambda_events::dynamodb::Event =
        serde_json::from_value(stream_event(&[("100", &records[0])])).unwrap();

    proxy.fail("UpdateItem");
    let first = relay.stream(event.clone()).await;
    assert_eq!(serde_json::to_value(&first).unwrap(), json!({"batchItemFailures": [{"itemIdentifier": "100"}]}));
    assert_eq!(proxy.count("PublishBatch"), 1, "published before the mark failed");
    assert_eq!(s(&outbox(&stack).await[0], "gsi1pk"), "OUTBOX#PENDING", "not marked");

    proxy.heal("UpdateItem");
    let second = relay.stream(event).await;
    assert_eq!(serde_json::to_value(&second).unwrap(), json!({"batchItemFailures": []}));
    assert_eq!(proxy.count("PublishBatch"), 2, "published again");
    assert!(s(&outbox(&stack).await[0], "gsi1pk").starts_with("OUTBOX#PUBLISHED#"), "marked, in its hour's partition");

    let got = domain_events(&stack, 2, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1, "the topic de-duplicates by event id: {got:?}");
    assert_eq!(got[0]["id"], event_id.as_str());
    validate(&got[0]).unwrap();
    stack.stop().await;
}

/// Records the stream path never published (a stream outage) are found by
/// the sweep, oldest first, and published once.
#[tokio::test]
async fn the_sweep_publishes_what_the_stream_path_missed() {
    let stack =
        TestStack::start_with(root().join("infra/template.yaml"), &Registry::vcare(), |c| c.event_sources = false)
            .await;
    let token = stack.token("u-doc", Some("c1"), &["doctor"]);
    for n in 0..3 {
        let start = chrono::Utc::now() + chrono::Duration::hours(2 + n);
        let body = room_body(&format!("apt-sweep-{n}"), start, &[rooms::doctor()]);
        let (status, _) = create_room(&stack, &token, &body).await;
        assert_eq!(status, 201);
    }
    let mut env = stack.gateway.function("OutboxRelayFunction").unwrap().def.environment.clone();
    let relay = outbox_relay::relay(&vcare_runtime::Env::from_map(env.clone()), &stack.sdk).unwrap();
    assert_eq!(relay.sweep().await.unwrap().published, 0, "younger than SWEEP_AFTER_SECONDS: the stream's to publish");
    env.insert("SWEEP_AFTER_SECONDS".into(), "0".into());
    let relay = outbox_relay::relay(&vcare_runtime::Env::from_map(env), &stack.sdk).unwrap();
    assert_eq!(relay.sweep().await.unwrap().published, 3);
    assert_eq!(relay.sweep().await.unwrap().published, 0, "once");
    let got = domain_events(&stack, 3, Duration::from_secs(10)).await;
    let mut ids: Vec<String> = got.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    let mut expected: Vec<String> =
        outbox(&stack).await.iter().map(|r| s(r, "pk").trim_start_matches("OUTBOX#").to_owned()).collect();
    expected.sort();
    assert_eq!(ids, expected);
    stack.stop().await;
}
