//! Recordings and dial-in against their floors, each handler in-process
//! through the same lambda_http conversion Lambda runs, interleaved with
//! the same AWS calls made bare. `make bench ARGS="--bench recordings"`
//! (release, private loopback endpoint); under `cargo test`, a smoke run.
//!
//! - Jibri's complete (the finalize path's step that makes a recording
//!   ready): floor the pointer and record reads, the HeadObject check and
//!   the transaction (record, event, retention entry).
//! - LiveKit's `egress_ended` (complete): floor the room's name pointer
//!   and room reads, the recordings query, the HeadObject check and the
//!   transaction.
//! - A PIN lookup (`conference-mapper?id=`): floor its BatchGetItem (the
//!   PIN and the minute's misses) and the room's read.

use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue as V, Put, TransactWriteItem};
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use vcare_runtime::Function;
use vcare_tests::livekit::{API_SECRET, EgressEnd, signed_webhook};
use vcare_tests::measure::report_against_floor;
use vcare_tests::rooms::{doctor, patient, room_body};
use vcare_tests::{JITSI_WEBHOOK_SECRET, OPENVIDU_CLINIC, TestStack};

/// An API Gateway HTTP API event for a public route (no authorizer).
fn event(method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: Option<String>) -> Value {
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(vcare_tests::root().join("events/recordings/1-consent.json")).unwrap(),
    )
    .unwrap();
    let mut e = sample;
    e["rawPath"] = json!(path);
    e["rawQueryString"] = json!(query);
    let params: serde_json::Map<String, Value> =
        form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), json!(v))).collect();
    e["queryStringParameters"] = Value::Object(params);
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"].as_object_mut().unwrap().remove("authorizer");
    e["routeKey"] = json!("$default");
    e["requestContext"]["routeKey"] = json!("$default");
    e.as_object_mut().unwrap().remove("pathParameters");
    let h = e["headers"].as_object_mut().unwrap();
    h.remove("authorization");
    for (k, v) in headers {
        h.insert((*k).into(), json!(v));
    }
    match body {
        Some(b) => e["body"] = json!(b),
        None => {
            e.as_object_mut().unwrap().remove("body");
        }
    }
    e
}

async fn post(stack: &TestStack, path: &str, token: &str, body: Value) -> (u16, Value) {
    let (status, _, out) =
        stack.send(stack.http.post(format!("{}{path}", stack.base)).bearer_auth(token).json(&body)).await;
    (status, out)
}

/// A room of `clinic` on its provider, recording, every patient consented,
/// its first token issued (an OpenVidu room's LiveKit room is then up).
async fn consented(stack: &TestStack, clinic: &str, appointment: &str) -> Value {
    let doc = stack.token("u-doc", Some(clinic), &["doctor"]);
    let mut body = room_body(appointment, Utc::now() + Duration::minutes(5), &[doctor(), patient()]);
    body["recording"] = json!(true);
    body["lobby"] = json!(false);
    let (status, room) = post(stack, "/v1/virtual-care/rooms", &doc, body).await;
    assert_eq!(status, 201, "{room}");
    let id = room["roomId"].as_str().unwrap();
    let pat = stack.token("u-pat", Some(clinic), &["patient"]);
    assert_eq!(
        post(stack, &format!("/v1/virtual-care/rooms/{id}/consent"), &pat, json!({"recording": true})).await.0,
        200
    );
    assert_eq!(post(stack, &format!("/v1/virtual-care/rooms/{id}/tokens"), &doc, json!({})).await.0, 201);
    room
}

fn key(pk: String, sk: &str) -> std::collections::HashMap<String, V> {
    [("pk".to_owned(), V::S(pk)), ("sk".to_owned(), V::S(sk.to_owned()))].into()
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = if bench { 150 } else { 3 };
    let stack =
        TestStack::start_with(vcare_tests::root().join("infra/template.yaml"), &vcare_local::Registry::vcare(), |c| {
            c.parameters.insert("ClinicDialInNumbers".into(), "c-1=AF:+93201234567".into());
        })
        .await;
    let env = |id: &str| vcare_runtime::Env::from_map(stack.gateway.function(id).unwrap().def.environment.clone());
    let recordings = recordings::function(&env("RecordingsFunction"), &stack.sdk).await.unwrap();
    let webhooks = openvidu_events::function(&env("OpenViduEventsFunction"), &stack.sdk).await.unwrap();
    let dial_in = dial_in::function(&env("DialInFunction"), &stack.sdk).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let s3 = aws_sdk_s3::Client::new(&stack.sdk);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let bucket = stack.gateway.resource("RecordingBucket").unwrap().reference.clone();
    let get = |k: std::collections::HashMap<String, V>| {
        ddb.get_item().table_name(&table).set_key(Some(k)).consistent_read(true).send()
    };
    let put = |pk: String, bytes: usize| {
        let p = Put::builder()
            .table_name(&table)
            .item("pk", V::S(pk))
            .item("sk", V::S("BENCH".into()))
            .item("data", V::S("x".repeat(bytes)))
            .build()
            .unwrap();
        TransactWriteItem::builder().put(p).build()
    };
    let settle_floor = |i: String| {
        ddb.transact_write_items().set_transact_items(Some(vec![
            put(format!("BENCH#rec#{i}"), 600),
            put(format!("BENCH#evt#{i}"), 500),
            put(format!("BENCH#due#{i}"), 150),
        ]))
    };

    // Jibri's complete.
    let room = consented(&stack, "c-1", "apt-bench-jibri").await;
    let name = room["jitsiRoom"].as_str().unwrap().to_owned();
    let room_key = key(format!("ROOM#c-1#{}", room["roomId"].as_str().unwrap()), "ROOM");
    let secret = [("x-jitsi-shared-secret", JITSI_WEBHOOK_SECRET), ("content-type", "application/json")];
    let (mut handler, mut bare) = (Vec::new(), Vec::new());
    let video = vec![5u8; 64 * 1024];
    for i in 0..n {
        let body = json!({"roomName": name, "contentType": "video/mp4", "sizeBytes": video.len()}).to_string();
        let answer = recordings
            .invoke(event("POST", "/v1/virtual-care/jibri/recordings", "", &secret, Some(body)), Default::default())
            .await
            .unwrap();
        assert_eq!(answer["statusCode"], 201, "{answer}");
        let upload: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        let mut request = stack.http.put(upload["uploadUrl"].as_str().unwrap()).body(video.clone());
        for (k, v) in upload["uploadHeaders"].as_object().unwrap() {
            request = request.header(k, v.as_str().unwrap());
        }
        assert_eq!(request.send().await.unwrap().status(), 200);
        let id = upload["recordingId"].as_str().unwrap().to_owned();
        let object = format!("recordings/c-1/{}/{id}.mp4", room["roomId"].as_str().unwrap());
        let floor = async {
            let t = Instant::now();
            get(key(format!("RECORDING#{id}"), "RECORDING")).await.unwrap();
            get(key(format!("ROOM#c-1#{}", room["roomId"].as_str().unwrap()), &format!("REC#{id}"))).await.unwrap();
            s3.head_object().bucket(&bucket).key(&object).send().await.unwrap();
            settle_floor(format!("j{i}")).send().await.unwrap();
            t.elapsed()
        };
        let path = format!("/v1/virtual-care/jibri/recordings/{id}/complete");
        let complete = async {
            let t = Instant::now();
            let answer = recordings.invoke(event("POST", &path, "", &secret, None), Default::default()).await.unwrap();
            assert_eq!(answer["statusCode"], 200, "{answer}");
            t.elapsed()
        };
        // Alternating which goes first: neither gains from the other's warm-up.
        if i % 2 == 0 {
            bare.push(floor.await);
            handler.push(complete.await);
        } else {
            handler.push(complete.await);
            bare.push(floor.await);
        }
    }
    let doc1 = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let (_, _, listed) = stack
        .get(&format!("/v1/virtual-care/rooms/{}/recordings", room["roomId"].as_str().unwrap()), Some(&doc1))
        .await;
    let ready = listed.as_array().unwrap().iter().filter(|r| r["status"] == "ready").count();
    assert_eq!(ready, n, "every complete made its recording ready: {listed}");
    report_against_floor(
        &format!("Jibri's complete, {n} recordings made ready (local AWS endpoint)"),
        handler,
        "its calls",
        bare,
    );

    // LiveKit's egress_ended, ten recordings per room (its recordings are
    // queried: a consultation has a few, not hundreds).
    let doc = stack.token("u-doc", Some(OPENVIDU_CLINIC), &["doctor"]);
    let (mut handler, mut bare) = (Vec::new(), Vec::new());
    let (mut id, mut name, mut ov_room_key) = (String::new(), String::new(), key(String::new(), ""));
    for i in 0..n {
        if i % 10 == 0 {
            let room = consented(&stack, OPENVIDU_CLINIC, &format!("apt-bench-egress-{i}")).await;
            id = room["roomId"].as_str().unwrap().to_owned();
            name = room["jitsiRoom"].as_str().unwrap().to_owned();
            ov_room_key = key(format!("ROOM#{OPENVIDU_CLINIC}#{id}"), "ROOM");
        }
        let (status, started) =
            post(&stack, &format!("/v1/virtual-care/rooms/{id}/recording/start"), &doc, json!({})).await;
        assert_eq!(status, 202, "{started}");
        let egress = stack.livekit.egresses().into_iter().rfind(|e| e.info["room_name"] == name).unwrap();
        let egress_id = egress.info["egress_id"].as_str().unwrap().to_owned();
        let ended = stack.livekit.egress_ended(&egress_id, EgressEnd::Complete(&video), 60).await;
        let (body, auth) = signed_webhook(&ended, API_SECRET, Utc::now().timestamp());
        let headers = [("authorization", auth.as_str()), ("content-type", "application/webhook+json")];
        let object = format!("recordings/{OPENVIDU_CLINIC}/{id}/{}.mp4", started["recordingId"].as_str().unwrap());
        let floor = async {
            let t = Instant::now();
            get(key(format!("JITSI#{name}"), "JITSI")).await.unwrap();
            get(ov_room_key.clone()).await.unwrap();
            ddb.query()
                .table_name(&table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :rec)")
                .expression_attribute_values(":pk", V::S(format!("ROOM#{OPENVIDU_CLINIC}#{id}")))
                .expression_attribute_values(":rec", V::S("REC#".into()))
                .consistent_read(true)
                .send()
                .await
                .unwrap();
            s3.head_object().bucket(&bucket).key(&object).send().await.unwrap();
            settle_floor(format!("e{i}")).send().await.unwrap();
            t.elapsed()
        };
        let hook = event("POST", "/v1/virtual-care/openvidu/webhook", "", &headers, Some(body));
        let settle = async {
            let t = Instant::now();
            let answer = webhooks.invoke(hook, Default::default()).await.unwrap();
            assert_eq!(answer["statusCode"], 200, "{answer}");
            t.elapsed()
        };
        if i % 2 == 0 {
            bare.push(floor.await);
            handler.push(settle.await);
        } else {
            handler.push(settle.await);
            bare.push(floor.await);
        }
    }
    report_against_floor(
        &format!("LiveKit's egress_ended, {n} egresses made ready (local AWS endpoint)"),
        handler,
        "its calls",
        bare,
    );
    let (_, _, listed) = stack.get(&format!("/v1/virtual-care/rooms/{id}/recordings"), Some(&doc)).await;
    assert!(listed.as_array().unwrap().iter().all(|r| r["status"] == "ready"), "every egress ready: {listed}");

    // A PIN lookup, inside the window.
    let rid = room_key["pk"].as_s().unwrap().rsplit('#').next().unwrap().to_owned();
    let (_, token) = post(&stack, &format!("/v1/virtual-care/rooms/{rid}/tokens"), &doc1, json!({})).await;
    let pin = token["dialIn"]["pin"].as_str().expect("the room's PIN").to_owned();
    let (mut handler, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..n * 2 {
        let minute = Utc::now().format("%Y-%m-%dT%H:%M").to_string();
        let keys = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .keys(key(format!("DIALIN#{pin}"), "DIALIN"))
            .keys(key(format!("DIALMISS#{minute}"), "DIALMISS"))
            .consistent_read(true)
            .build()
            .unwrap();
        let t = Instant::now();
        ddb.batch_get_item().request_items(&table, keys).send().await.unwrap();
        get(room_key.clone()).await.unwrap();
        bare.push(t.elapsed());
        let lookup = event("GET", "/v1/virtual-care/jitsi/conference-mapper", &format!("id={pin}"), &[], None);
        let t = Instant::now();
        let answer = dial_in.invoke(lookup, Default::default()).await.unwrap();
        handler.push(t.elapsed());
        assert_eq!(answer["statusCode"], 200, "{answer}");
    }
    let m = handler.len();
    report_against_floor(
        &format!("a PIN lookup, {m} in the window (local AWS endpoint)"),
        handler,
        "its two reads",
        bare,
    );
    stack.stop().await;
}
