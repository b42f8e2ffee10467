//! FHIR sync throughput per instance (issue 21): `fhir-sync` invoked
//! in-process with batches of ten queue records (each a room's
//! `virtual_care.room.created`) against the FHIR stand-in on loopback,
//! against its floor — the calls each record must make, made bare: the
//! room's GetItem, the search by identifier and the conditional update.
//! Interleaved batch by batch so machine noise hits both alike. `make
//! bench ARGS="--bench fhir"`; under `cargo test`, a smoke run.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vcare_runtime::Function;
use vcare_tests::fhir::FhirStandIn;
use vcare_tests::measure::{read_room, report_against_floor};
use vcare_tests::rooms::{create_room, doctor, patient, room_body};

const CLINIC: &str = "c1";

fn record(room_id: &str, i: usize) -> Value {
    let event = json!({
        "specversion": "1.0", "id": format!("ev-{i}"), "source": "/vcare/virtual-care",
        "type": "virtual_care.room.created", "time": "2026-12-07T08:00:00Z", "subject": room_id,
        "datacontenttype": "application/json", "clinicid": CLINIC, "data": {"roomId": room_id}
    });
    json!({
        "messageId": format!("m-{i}"), "receiptHandle": "h", "body": event.to_string(),
        "attributes": {"MessageGroupId": room_id, "MessageDeduplicationId": format!("ev-{i}")},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:FhirQueue.fifo", "awsRegion": "eu-central-1"
    })
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (rooms, rounds) = if bench { (50, 20) } else { (10, 1) };
    let fhir = FhirStandIn::start().await;
    let (template, registry) = (vcare_tests::root().join("infra/template.yaml"), vcare_local::Registry::vcare());
    let url = fhir.url.clone();
    let stack = vcare_tests::TestStack::start_with(template, &registry, move |c| {
        c.event_sources = false;
        c.parameters.insert("FhirBaseUrl".into(), url);
    })
    .await;
    let doc = stack.token("u-doc", Some(CLINIC), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::hours(1);
    let mut ids = Vec::new();
    for i in 0..rooms {
        let (status, room) =
            create_room(&stack, &doc, &room_body(&format!("apt-fb-{i}"), start, &[doctor(), patient()])).await;
        assert_eq!(status, 201, "{room}");
        ids.push(room["roomId"].as_str().unwrap().to_owned());
    }
    let env = stack.gateway.function("FhirSyncFunction").unwrap().def.environment.clone();
    let table = env["TABLE_NAME"].clone();
    let function = fhir_sync::function(&vcare_runtime::Env::from_map(env), &stack.sdk).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let http = reqwest::Client::new();
    let (mut handler, mut floor) = (Vec::new(), Vec::new());
    let mut n = 0;
    for round in 0..rounds {
        for batch in ids.chunks(10) {
            let records: Vec<Value> = batch
                .iter()
                .map(|id| {
                    n += 1;
                    record(id, n)
                })
                .collect();
            let t = Instant::now();
            let out = function.invoke(json!({"Records": records}), Default::default()).await.unwrap();
            let took = t.elapsed();
            assert_eq!(out["batchItemFailures"], json!([]), "{out}");
            handler.push(took / batch.len() as u32);
            // The floor: each record's three calls, bare (a resource of its own).
            let t = Instant::now();
            for id in batch {
                read_room(&ddb, &table, CLINIC, id).await;
                let q = format!("identifier=urn:vcare:floor|{id}-{round}");
                http.get(format!("{}/Encounter?{q}", fhir.url)).send().await.unwrap();
                let body = json!({"resourceType": "Encounter", "identifier": [{"system": "urn:vcare:floor", "value": format!("{id}-{round}")}],
                                  "status": "planned", "class": {"code": "VR"}});
                let r = http
                    .put(format!("{}/Encounter?{q}", fhir.url))
                    .header("content-type", "application/fhir+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
            }
            floor.push(t.elapsed() / batch.len() as u32);
        }
    }
    let per_record: Vec<Duration> = handler.clone();
    let median = {
        let mut h = per_record.clone();
        h.sort();
        h[h.len() / 2]
    };
    report_against_floor(
        &format!("fhir-sync, {} records in batches of 10, per record (local AWS endpoint, FHIR stand-in)", n),
        handler,
        "its 3 calls",
        floor,
    );
    println!("  throughput per instance (median batch): {:.0} records/s", 1.0 / median.as_secs_f64());
    assert_eq!(
        fhir.all().iter().filter(|r| r["identifier"][0]["system"] == "urn:vcare:room").count(),
        rooms * rounds,
        "a version per record"
    );
    stack.stop().await;
}
