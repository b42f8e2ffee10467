//! The FHIR R4 sync (issue 21) through the local gateway: the outbox relay
//! hands the events FHIR hears of to the FHIR queue, and `fhir-sync` makes
//! each notification's `Communication` and each consultation's
//! `Encounter` on a stand-in server that enforces conditional and
//! version-aware updates. Every version written is validated by
//! fhir.resources (PyPI), not by vcare; states arrive in order; a 503 or
//! 429 is retried, a refusal dead-lettered with its reason, another
//! writer's edit in between read again.

use std::time::Duration;

use serde_json::{Value, json};
use vcare_tests::comms::{Providers, accept, body, stack_tuned, wait_for};
use vcare_tests::fhir::FhirStandIn;
use vcare_tests::rooms::{create_room, doctor, patient, room_body};
use vcare_tests::{TestStack, eventually, root};

async fn stack(p: &Providers, fhir: &FhirStandIn) -> TestStack {
    let url = fhir.url.clone();
    stack_tuned(p, "gateway", "sendgrid", move |c| {
        c.parameters.insert("FhirBaseUrl".into(), url);
    })
    .await
}

/// fhir.resources' verdict on `resources`.
fn validate(resources: &[Value]) {
    use std::io::Write;
    let mut child = std::process::Command::new(root().join(".venv/bin/python"))
        .arg(root().join("tests/python/fhir_check.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the test virtualenv's python");
    child.stdin.take().unwrap().write_all(Value::Array(resources.to_vec()).to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let verdict = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "not valid FHIR R4: {verdict}");
    assert_eq!(serde_json::from_str::<Value>(&verdict).unwrap()["valid"], resources.len());
}

fn statuses(versions: &[Value]) -> Vec<String> {
    versions.iter().map(|v| v["status"].as_str().unwrap().to_owned()).collect()
}

/// The states' order: a later version never goes back.
fn in_order(statuses: &[String], order: &[&str]) {
    let rank = |s: &str| order.iter().position(|o| *o == s).unwrap_or_else(|| panic!("unexpected {s}"));
    assert!(statuses.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])), "out of order: {statuses:?}");
}

async fn end_room(stack: &TestStack, token: &str, room: &str) {
    let url = format!("{}/v1/virtual-care/rooms/{room}/end", stack.base);
    let (status, _, out) = stack.send(stack.http.post(url).bearer_auth(token).json(&json!({}))).await;
    assert_eq!(status, 200, "{out}");
}

/// The FHIR consumer's subscription lets through exactly what the sync hears of.
#[test]
fn the_fhir_subscription_filters_on_the_synced_types() {
    let template = vcare_local::Template::load(&root().join("infra/template.yaml")).unwrap();
    let (_, subscription) =
        template.of_type("AWS::SNS::Subscription").find(|(id, _)| *id == "FhirSubscription").unwrap();
    let mut types: Vec<&str> = subscription["Properties"]["FilterPolicy"]["type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    types.sort();
    let mut synced = vcare_domain::fhir::SYNCED.to_vec();
    synced.sort();
    assert_eq!(types, synced);
}

#[tokio::test]
async fn notifications_and_consultations_reach_fhir_valid_and_in_order() {
    let (p, fhir) = (Providers::start().await, FhirStandIn::start().await);
    let stack = stack(&p, &fhir).await;
    let doc = stack.token("u-doc", Some("c1"), &["doctor"]);

    // A reminder sent by SMS: its Communication, completed, no payload.
    let mut request = body(&["sms"], "high");
    request["category"] = json!("appointment-reminder");
    request["context"] = json!({"appointmentId": "apt-fhir-1"});
    let id = accept(&stack, &request, "k-fhir-1").await;
    wait_for(&stack, &id, "sent", Duration::from_secs(30)).await;
    let versions = eventually(Duration::from_secs(30), "the Communication completed", || async {
        let v = fhir.versions("Communication", &id);
        (v.last().is_some_and(|c| c["status"] == "completed")).then_some(v)
    })
    .await;
    let last = versions.last().unwrap();
    assert_eq!(last["identifier"][0], json!({"system": "urn:vcare:notification", "value": id}));
    assert_eq!(last["subject"]["reference"], "Patient/u-pat");
    assert_eq!(last["medium"][0]["text"], "sms");
    assert_eq!(last["about"][0]["reference"], "Appointment/apt-fhir-1");
    assert!(last["sent"].is_string());
    in_order(&statuses(&versions), &["preparation", "in-progress", "completed"]);
    let text = Value::Array(versions.clone()).to_string();
    for personal in [vcare_tests::comms::PHONE, vcare_tests::comms::EMAIL, "Tuesday", "secretroomname"] {
        assert!(!text.contains(personal), "FHIR got {personal}");
    }

    // A consultation: planned, then finished when the doctor ends it.
    let start = chrono::Utc::now() + chrono::Duration::minutes(5);
    let (status, room) = create_room(&stack, &doc, &room_body("apt-fhir-2", start, &[doctor(), patient()])).await;
    assert_eq!(status, 201, "{room}");
    let room_id = room["roomId"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(30), "the Encounter planned", || async {
        fhir.versions("Encounter", &room_id).last().is_some_and(|e| e["status"] == "planned").then_some(())
    })
    .await;
    end_room(&stack, &doc, &room_id).await;
    let versions = eventually(Duration::from_secs(30), "the Encounter finished", || async {
        let v = fhir.versions("Encounter", &room_id);
        v.last().is_some_and(|e| e["status"] == "finished").then_some(v)
    })
    .await;
    in_order(&statuses(&versions), &["planned", "in-progress", "finished"]);
    let last = versions.last().unwrap();
    assert_eq!(last["class"]["code"], "VR");
    assert_eq!(last["appointment"][0]["reference"], "Appointment/apt-fhir-2");
    assert_eq!(last["subject"]["reference"], "Patient/u-pat");

    // Every version the server holds is valid R4, as fhir.resources reads it.
    let all = fhir.all();
    assert!(all.len() >= 3);
    validate(&all);
    // And the validator does refuse what is not R4 (it can fail).
    let mut broken = last.clone();
    broken["class"] = json!([broken["class"].clone()]);
    let refused = std::panic::catch_unwind(|| validate(&[broken]));
    assert!(refused.is_err(), "an R5-style class list is not R4");
    stack.stop().await;
}

#[tokio::test]
async fn a_busy_server_is_retried_a_refusal_dead_lettered_and_an_edit_read_again() {
    let (p, fhir) = (Providers::start().await, FhirStandIn::start().await);
    let stack = stack(&p, &fhir).await;
    let doc = stack.token("u-doc", Some("c1"), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::minutes(5);

    // 503, then 429: the queue tries again until the server takes it.
    fhir.fail_next([503, 429]);
    let (_, room) = create_room(&stack, &doc, &room_body("apt-busy", start, &[doctor(), patient()])).await;
    let busy = room["roomId"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(60), "the Encounter after 503 and 429", || async {
        (!fhir.versions("Encounter", &busy).is_empty()).then_some(())
    })
    .await;

    // Another writer edits the Encounter between vcare's read and write:
    // the write is 412, read again, written over the new version.
    fhir.edit_before_next_update();
    end_room(&stack, &doc, &busy).await;
    let versions = eventually(Duration::from_secs(30), "finished over the edit", || async {
        let v = fhir.versions("Encounter", &busy);
        v.last().is_some_and(|e| e["status"] == "finished").then_some(v)
    })
    .await;
    assert_eq!(statuses(&versions), ["planned", "planned", "finished"], "the edit kept, then the new state");

    // A resource the server refuses (422): dead-lettered with the reason,
    // not retried.
    fhir.refuse_containing("apt-refused");
    let (_, room) = create_room(&stack, &doc, &room_body("apt-refused", start, &[doctor(), patient()])).await;
    let refused = room["roomId"].as_str().unwrap().to_owned();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let dlq = stack.gateway.resource("FhirDLQ").unwrap().reference.clone();
    let message = eventually(Duration::from_secs(30), "the refusal in the DLQ", || async {
        let got = sqs
            .receive_message()
            .queue_url(&dlq)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        got.messages.unwrap_or_default().into_iter().next()
    })
    .await;
    let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
    assert_eq!(
        (event["type"].as_str(), event["subject"].as_str()),
        (Some("virtual_care.room.created"), Some(refused.as_str()))
    );
    let reason = message.message_attributes().unwrap()["reason"].string_value().unwrap().to_owned();
    assert!(reason.contains("422"), "{reason}");
    assert!(fhir.versions("Encounter", &refused).is_empty());
    let puts_for_refused = fhir.requests().iter().filter(|(m, _)| m == "PUT").count();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fhir.requests().iter().filter(|(m, _)| m == "PUT").count(), puts_for_refused, "not retried");
    validate(&fhir.all());
    stack.stop().await;
}
