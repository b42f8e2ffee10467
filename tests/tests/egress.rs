//! OpenVidu's recordings through the local gateway: the room's doctor
//! starts LiveKit egress (the stand-in, over Twirp with the `roomRecord`
//! grant only) once every patient consented; the stand-in's egress writes
//! the MP4 into the recordings bucket through the S3 endpoint vcare named,
//! and its signed `egress_ended` settles it (ready only once S3 has the
//! file, encrypted with the recordings key); failures keep LiveKit's
//! error; an egress whose webhook never came is settled by the sweep; a
//! patient's "no" stops it; and the retention sweep deletes what expired
//! unless it is under legal hold.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use vcare_tests::livekit::{API_SECRET, EgressEnd, signed_webhook};
use vcare_tests::rooms::{doctor, patient, room_body, room_events};
use vcare_tests::{OPENVIDU_CLINIC, TestStack};

async fn post(stack: &TestStack, path: &str, token: &str, body: Value) -> (u16, Value) {
    let (status, _, out) =
        stack.send(stack.http.post(format!("{}{path}", stack.base)).bearer_auth(token).json(&body)).await;
    (status, out)
}

async fn webhook(stack: &TestStack, event: &Value) -> u16 {
    let (body, auth) = signed_webhook(event, API_SECRET, Utc::now().timestamp());
    let request = stack
        .http
        .post(format!("{}/v1/virtual-care/openvidu/webhook", stack.base))
        .header("content-type", "application/webhook+json")
        .header("authorization", auth)
        .body(body);
    stack.send(request).await.0
}

fn doc(stack: &TestStack) -> String {
    stack.token("u-doc", Some(OPENVIDU_CLINIC), &["doctor"])
}

fn pat(stack: &TestStack) -> String {
    stack.token("u-pat", Some(OPENVIDU_CLINIC), &["patient"])
}

/// A recording OpenVidu room whose LiveKit room is up (the doctor has a token).
async fn ov_room(stack: &TestStack, appointment: &str) -> (Value, String) {
    let mut body = room_body(appointment, Utc::now() + Duration::minutes(5), &[doctor(), patient()]);
    body["recording"] = json!(true);
    body["lobby"] = json!(false);
    let (status, room) = post(stack, "/v1/virtual-care/rooms", &doc(stack), body).await;
    assert_eq!(status, 201, "{room}");
    let id = room["roomId"].as_str().unwrap().to_owned();
    let (status, token) = post(stack, &format!("/v1/virtual-care/rooms/{id}/tokens"), &doc(stack), json!({})).await;
    assert_eq!(status, 201, "{token}");
    (room, id)
}

async fn consent(stack: &TestStack, id: &str, yes: bool) {
    let (status, out) =
        post(stack, &format!("/v1/virtual-care/rooms/{id}/consent"), &pat(stack), json!({"recording": yes})).await;
    assert_eq!(status, 200, "{out}");
}

async fn start(stack: &TestStack, id: &str, token: &str) -> (u16, Value) {
    post(stack, &format!("/v1/virtual-care/rooms/{id}/recording/start"), token, json!({})).await
}

async fn listed(stack: &TestStack, id: &str) -> Vec<Value> {
    let (status, _, out) = stack.get(&format!("/v1/virtual-care/rooms/{id}/recordings"), Some(&doc(stack))).await;
    assert_eq!(status, 200, "{out}");
    out.as_array().unwrap().clone()
}

/// The egress the stand-in runs for `room` (the latest).
fn egress_of(stack: &TestStack, room: &Value) -> vcare_tests::livekit::Egress {
    let name = room["jitsiRoom"].as_str().unwrap();
    stack.livekit.egresses().into_iter().rfind(|e| e.info["room_name"] == name).expect("an egress for the room")
}

fn video(n: u32) -> Vec<u8> {
    (0..n).map(|i| (i % 249) as u8).collect()
}

async fn scheduler(stack: &TestStack) -> std::sync::Arc<reminder_scheduler::Scheduler> {
    let env = stack.gateway.function("ReminderSchedulerFunction").unwrap().def.environment.clone();
    reminder_scheduler::scheduler(&vcare_runtime::Env::from_map(env), &stack.sdk).await.unwrap()
}

#[tokio::test]
async fn an_egress_starts_only_after_consent_and_is_ready_once_its_file_is_checked() {
    let stack = TestStack::start().await;
    let (room, id) = ov_room(&stack, "apt-egress").await;

    // Until the patient said yes: 409, and LiveKit is not asked.
    let (status, out) = start(&stack, &id, &doc(&stack)).await;
    assert_eq!(status, 409, "{out}");
    assert!(out["detail"].as_str().unwrap().contains("not every patient"), "{out}");
    consent(&stack, &id, true).await;
    assert_eq!(start(&stack, &id, &pat(&stack)).await.0, 403, "a patient may not start it");
    let other = stack.token("u-doc", Some("c-1"), &["doctor"]);
    assert_eq!(start(&stack, &id, &other).await.0, 404, "another clinic's doctor sees no room");
    assert!(stack.livekit.egresses().is_empty());

    // Two starts at once (a double click): one egress, the other 409.
    let token = doc(&stack);
    let (a, b) = tokio::join!(start(&stack, &id, &token), start(&stack, &id, &token));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [202, 409], "{a:?} {b:?}");
    assert_eq!(stack.livekit.egresses().len(), 1, "recorded once");
    let started = if a.0 == 202 { a.1 } else { b.1 };
    assert_eq!(started["status"], "starting", "{started}");
    let recording_id = started["recordingId"].as_str().unwrap().to_owned();
    assert_eq!(start(&stack, &id, &doc(&stack)).await.0, 409, "already recording");

    // What LiveKit was asked: a room-composite MP4 into the recordings
    // bucket under the room's prefix, with no keys, on the roomRecord grant.
    let egress = egress_of(&stack, &room);
    let file = &egress.request["file_outputs"][0];
    let bucket = stack.gateway.resource("RecordingBucket").unwrap().reference.clone();
    assert_eq!(file["filepath"], format!("recordings/{OPENVIDU_CLINIC}/{id}/{recording_id}.mp4"));
    assert_eq!((&file["file_type"], &file["s3"]["bucket"]), (&json!("MP4"), &json!(bucket)));
    assert!(file["s3"].get("access_key").is_none() && file["s3"].get("secret").is_none(), "{file}");
    let call = stack.livekit.calls().into_iter().find(|c| c.method == "StartRoomCompositeEgress").unwrap();
    assert_eq!(call.grant, json!({"roomRecord": true}));

    let egress_id = egress.info["egress_id"].as_str().unwrap().to_owned();
    assert_eq!(webhook(&stack, &stack.livekit.egress_started(&egress_id)).await, 200);
    assert_eq!(listed(&stack, &id).await[0]["status"], "active");

    let (status, stopped) =
        post(&stack, &format!("/v1/virtual-care/rooms/{id}/recording/stop"), &doc(&stack), json!({})).await;
    assert_eq!(status, 202, "{stopped}");
    assert_eq!(egress_of(&stack, &room).info["status"], "EGRESS_ENDING");

    let bytes = video(150_000);
    let ended = stack.livekit.egress_ended(&egress_id, EgressEnd::Complete(&bytes), 1800).await;
    assert_eq!(webhook(&stack, &ended).await, 200);
    assert_eq!(webhook(&stack, &ended).await, 200, "LiveKit's repeat changes nothing");
    let items = listed(&stack, &id).await;
    let r = &items[0];
    assert_eq!(
        (&r["status"], &r["sizeBytes"], &r["durationSeconds"]),
        (&json!("ready"), &json!(bytes.len()), &json!(1800))
    );
    let got = reqwest::get(r["downloadUrl"].as_str().unwrap()).await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let ready = room_events(&stack, &id, "virtual_care.recording.ready").await;
    assert_eq!(ready.len(), 1, "one event for two webhooks");
    assert_eq!(
        (&ready[0]["data"]["durationSeconds"], &ready[0]["data"]["sizeBytes"]),
        (&json!(1800), &json!(bytes.len()))
    );

    // Stopping again: nothing records. A Jitsi room: Jibri's, 409.
    let (status, _) =
        post(&stack, &format!("/v1/virtual-care/rooms/{id}/recording/stop"), &doc(&stack), json!({})).await;
    assert_eq!(status, 409);
    let mut body = room_body("apt-egress-jitsi", Utc::now() + Duration::minutes(5), &[doctor(), patient()]);
    body["recording"] = json!(true);
    let jitsi_doc = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let (_, jitsi) = post(&stack, "/v1/virtual-care/rooms", &jitsi_doc, body).await;
    let (status, out) = start(&stack, jitsi["roomId"].as_str().unwrap(), &jitsi_doc).await;
    assert_eq!(status, 409, "{out}");
    assert!(out["detail"].as_str().unwrap().contains("Jibri"), "{out}");
    stack.stop().await;
}

#[tokio::test]
async fn failed_egresses_keep_their_error_and_the_sweep_settles_one_whose_webhook_never_came() {
    let stack = TestStack::start().await;
    let (room, id) = ov_room(&stack, "apt-egress-fail").await;
    consent(&stack, &id, true).await;

    // LIMIT_REACHED: failed, with LiveKit's error and the event.
    let (_, first) = start(&stack, &id, &doc(&stack)).await;
    let egress_id = egress_of(&stack, &room).info["egress_id"].as_str().unwrap().to_owned();
    let ended =
        stack.livekit.egress_ended(&egress_id, EgressEnd::Failed("EGRESS_LIMIT_REACHED", "max duration"), 60).await;
    assert_eq!(webhook(&stack, &ended).await, 200);
    let r = listed(&stack, &id).await.into_iter().find(|r| r["recordingId"] == first["recordingId"]).unwrap();
    assert_eq!((&r["status"], &r["error"]), (&json!("failed"), &json!("EGRESS_LIMIT_REACHED: max duration")));
    assert!(r.get("downloadUrl").is_none());
    let failed = room_events(&stack, &id, "virtual_care.recording.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["data"]["recordingId"], first["recordingId"]);

    // A complete egress whose file is not what LiveKit reported: failed.
    let (_, second) = start(&stack, &id, &doc(&stack)).await;
    let egress_id = egress_of(&stack, &room).info["egress_id"].as_str().unwrap().to_owned();
    let mut ended = stack.livekit.egress_ended(&egress_id, EgressEnd::Complete(&video(1000)), 10).await;
    ended["egressInfo"]["fileResults"][0]["size"] = json!("999999");
    assert_eq!(webhook(&stack, &ended).await, 200);
    let r = listed(&stack, &id).await.into_iter().find(|r| r["recordingId"] == second["recordingId"]).unwrap();
    assert_eq!(r["status"], "failed");
    assert!(r["error"].as_str().unwrap().contains("not the size"), "{r}");

    // Complete at LiveKit, its webhook lost: the sweep asks ListEgress.
    let (_, third) = start(&stack, &id, &doc(&stack)).await;
    let egress_id = egress_of(&stack, &room).info["egress_id"].as_str().unwrap().to_owned();
    let bytes = video(5000);
    stack.livekit.egress_ended(&egress_id, EgressEnd::Complete(&bytes), 42).await;
    let sweep = scheduler(&stack).await;
    let now = Utc::now();
    assert_eq!(sweep.run(now).await.unwrap().recordings, 0, "not due yet");
    assert_eq!(sweep.run(now + Duration::minutes(3)).await.unwrap().recordings, 1);
    let r = listed(&stack, &id).await.into_iter().find(|r| r["recordingId"] == third["recordingId"]).unwrap();
    assert_eq!((&r["status"], &r["sizeBytes"], &r["durationSeconds"]), (&json!("ready"), &json!(5000), &json!(42)));
    assert_eq!(sweep.run(now + Duration::minutes(20)).await.unwrap().recordings, 0, "settled once");

    // Still recording at the sweep: looked at again later. Then the
    // patient says no: the egress is stopped at once.
    let (_, fourth) = start(&stack, &id, &doc(&stack)).await;
    let egress_id = egress_of(&stack, &room).info["egress_id"].as_str().unwrap().to_owned();
    stack.livekit.egress_started(&egress_id);
    assert_eq!(sweep.run(now + Duration::minutes(30)).await.unwrap().recordings, 0);
    let r = listed(&stack, &id).await.into_iter().find(|r| r["recordingId"] == fourth["recordingId"]).unwrap();
    assert_eq!(r["status"], "active", "the sweep saw it recording");
    consent(&stack, &id, false).await;
    assert_eq!(egress_of(&stack, &room).info["status"], "EGRESS_ENDING", "a withdrawn consent stops the egress");
    assert_eq!(start(&stack, &id, &doc(&stack)).await.0, 409);
    stack.stop().await;
}

#[tokio::test]
async fn an_egress_whose_start_answer_was_lost_is_found_by_its_file() {
    let stack = TestStack::start().await;
    let (room, id) = ov_room(&stack, "apt-egress-lost").await;
    consent(&stack, &id, true).await;

    // LiveKit started the egress but its answer never came: 503, the
    // recording kept as starting, and a retry is refused while it is.
    stack.livekit.lose_answer("StartRoomCompositeEgress");
    let (status, out) = start(&stack, &id, &doc(&stack)).await;
    assert_eq!(status, 503, "{out}");
    let egress = egress_of(&stack, &room);
    assert_eq!(stack.livekit.egresses().len(), 1, "LiveKit has the egress");
    let listed_now = listed(&stack, &id).await;
    assert_eq!(listed_now[0]["status"], "starting", "{listed_now:?}");
    assert_eq!(start(&stack, &id, &doc(&stack)).await.0, 409, "not a second egress");

    // Its webhook names an egress vcare never heard of: found by its file.
    let egress_id = egress.info["egress_id"].as_str().unwrap().to_owned();
    assert_eq!(webhook(&stack, &stack.livekit.egress_started(&egress_id)).await, 200);
    assert_eq!(listed(&stack, &id).await[0]["status"], "active");
    let bytes = video(3000);
    let ended = stack.livekit.egress_ended(&egress_id, EgressEnd::Complete(&bytes), 7).await;
    assert_eq!(webhook(&stack, &ended).await, 200);
    assert_eq!(listed(&stack, &id).await[0]["status"], "ready");

    // Lost again, and no webhook either: the sweep finds it by its file.
    stack.livekit.lose_answer("StartRoomCompositeEgress");
    assert_eq!(start(&stack, &id, &doc(&stack)).await.0, 503);
    let egress_id = egress_of(&stack, &room).info["egress_id"].as_str().unwrap().to_owned();
    stack.livekit.egress_ended(&egress_id, EgressEnd::Complete(&bytes), 9).await;
    let sweep = scheduler(&stack).await;
    assert_eq!(sweep.run(Utc::now() + Duration::minutes(3)).await.unwrap().recordings, 1);
    let items = listed(&stack, &id).await;
    assert_eq!((&items[1]["status"], &items[1]["durationSeconds"]), (&json!("ready"), &json!(9)), "{items:?}");

    // Asked while LiveKit was down (nothing started): the sweep fails it.
    stack.livekit.fail("StartRoomCompositeEgress", 503, 1);
    assert_eq!(start(&stack, &id, &doc(&stack)).await.0, 503);
    assert_eq!(sweep.run(Utc::now() + Duration::minutes(3)).await.unwrap().recordings, 1);
    let items = listed(&stack, &id).await;
    assert_eq!((&items[2]["status"], &items[2]["error"]), (&json!("failed"), &json!("the egress never started")));
    stack.stop().await;
}

#[tokio::test]
async fn the_retention_sweep_deletes_expired_recordings_unless_under_legal_hold() {
    let owned = TestStack::start().await;
    let stack = &owned;
    let (room, id) = ov_room(stack, "apt-retention").await;
    consent(stack, &id, true).await;
    let mut ids = vec![];
    for n in 0..2 {
        let (_, r) = start(stack, &id, &doc(stack)).await;
        let egress_id = egress_of(stack, &room).info["egress_id"].as_str().unwrap().to_owned();
        let ended = stack.livekit.egress_ended(&egress_id, EgressEnd::Complete(&video(2000 + n)), 5).await;
        assert_eq!(webhook(stack, &ended).await, 200);
        ids.push(r["recordingId"].as_str().unwrap().to_owned());
    }
    let admin = stack.token("u-admin", Some(OPENVIDU_CLINIC), &["clinic-admin"]);
    let hold = |rid: &str, on: bool| {
        let path = format!("/v1/virtual-care/recordings/{rid}/hold");
        let request = stack.http.put(format!("{}{path}", stack.base)).bearer_auth(&admin).json(&json!({"hold": on}));
        async move { stack.send(request).await.0 }
    };
    assert_eq!(hold(&ids[0], true).await, 200);

    // The template's default retention is 365 days.
    let sweep = scheduler(stack).await;
    let now = Utc::now();
    assert_eq!(sweep.run(now + Duration::days(364)).await.unwrap().recordings, 0, "kept for its retention");
    assert_eq!(sweep.run(now + Duration::days(366)).await.unwrap().recordings, 1, "the one not held");
    let status = |items: &[Value], rid: &str| items.iter().find(|r| r["recordingId"] == rid).unwrap()["status"].clone();
    let items = listed(stack, &id).await;
    assert_eq!((status(&items, &ids[0]), status(&items, &ids[1])), (json!("ready"), json!("deleted")));
    let s3 = aws_sdk_s3::Client::new(&stack.sdk);
    let bucket = stack.gateway.resource("RecordingBucket").unwrap().reference.clone();
    let versions = |rid: String| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        let key = format!("recordings/{OPENVIDU_CLINIC}/{id}/{rid}.mp4");
        async move {
            let listed = s3.list_object_versions().bucket(bucket).prefix(&key).send().await.unwrap();
            listed.versions().len() + listed.delete_markers().len()
        }
    };
    assert_eq!(versions(ids[1].clone()).await, 0, "every version of the expired one is gone");
    assert_eq!(versions(ids[0].clone()).await, 1, "the held one is kept");
    let deleted = room_events(stack, &id, "virtual_care.recording.deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        (&deleted[0]["data"]["recordingId"], &deleted[0]["data"]["reason"]),
        (&json!(ids[1]), &json!("retention"))
    );
    assert!(deleted[0]["data"].get("deletedBy").is_none());

    // The hold lifted: back in the sweep, which deletes it once expired.
    assert_eq!(hold(&ids[0], false).await, 200);
    assert_eq!(sweep.run(now + Duration::days(364)).await.unwrap().recordings, 0);
    assert_eq!(sweep.run(now + Duration::days(366)).await.unwrap().recordings, 1);
    assert_eq!(status(&listed(stack, &id).await, &ids[0]), json!("deleted"));
    assert_eq!(versions(ids[0].clone()).await, 0);
    owned.stop().await;
}

#[tokio::test]
async fn bad_recording_settings_fail_the_cold_start_by_name() {
    let stack = TestStack::start().await;
    let base = stack.gateway.function("RecordingsFunction").unwrap().def.environment.clone();
    for (name, value) in [
        ("RECORDING_RETENTION_DAYS", "0"),
        ("RECORDING_RETENTION_DAYS", "forever"),
        ("CLINIC_RECORDING_RETENTION_DAYS", "c-1"),
        ("CLINIC_RECORDING_RETENTION_DAYS", "c-1=30;c-1=60"),
        ("CLINIC_PATIENT_RECORDING_ACCESS", "c-1;c 2"),
        ("RECORDING_PART_BYTES", "1024"),
    ] {
        let mut env = base.clone();
        env.insert(name.into(), value.into());
        let err = recordings::function(&vcare_runtime::Env::from_map(env), &stack.sdk).await.err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains(name), "{name}={value}: {text:?}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn egress_webhooks_that_are_not_right_are_refused_or_ignored_and_change_nothing() {
    let stack = TestStack::start().await;
    let (room, id) = ov_room(&stack, "apt-egress-bad").await;
    consent(&stack, &id, true).await;
    let (_, started) = start(&stack, &id, &doc(&stack)).await;
    let egress_id = egress_of(&stack, &room).info["egress_id"].as_str().unwrap().to_owned();
    let name = room["jitsiRoom"].as_str().unwrap();
    let hook = |info: Value| json!({"event": "egress_ended", "id": "EV_bad", "egressInfo": info});
    // Malformed: 400.
    for bad in [
        json!({"event": "egress_ended", "id": "EV_bad"}),
        hook(json!({"roomName": name, "status": "EGRESS_COMPLETE"})),
        hook(json!({"egressId": egress_id, "roomName": name, "status": "DONE"})),
        hook(json!({"egressId": egress_id, "roomName": name, "status": "EGRESS_COMPLETE",
                    "fileResults": [{"size": "-5", "duration": "x"}]})),
        hook(json!({"egressId": "E".repeat(65), "roomName": name, "status": "EGRESS_COMPLETE"})),
    ] {
        assert_eq!(webhook(&stack, &bad).await, 400, "{bad}");
    }
    // Well-formed but not this room's egress, or no room vcare knows: 200, ignored.
    let other = hook(json!({"egressId": "EG_someoneelse", "roomName": name, "status": "EGRESS_FAILED", "error": "x"}));
    assert_eq!(webhook(&stack, &other).await, 200);
    let nowhere = hook(json!({"egressId": egress_id, "roomName": "vc-nowhere", "status": "EGRESS_FAILED"}));
    assert_eq!(webhook(&stack, &nowhere).await, 200);
    // Unsigned: 401.
    let request = stack
        .http
        .post(format!("{}/v1/virtual-care/openvidu/webhook", stack.base))
        .header("content-type", "application/webhook+json")
        .body(hook(json!({"egressId": egress_id, "roomName": name, "status": "EGRESS_FAILED"})).to_string());
    assert_eq!(stack.send(request).await.0, 401);
    // A complete naming a file S3 does not have: failed, never ready.
    let missing = hook(json!({"egressId": egress_id, "roomName": name, "status": "EGRESS_COMPLETE",
                              "fileResults": [{"filename": "recordings/x.mp4", "size": "100", "duration": "1000000000"}]}));
    let items = listed(&stack, &id).await;
    assert_eq!(items[0]["status"], "starting", "nothing changed by the bad ones: {items:?}");
    assert_eq!(webhook(&stack, &missing).await, 200);
    let r = listed(&stack, &id).await.into_iter().find(|r| r["recordingId"] == started["recordingId"]).unwrap();
    assert_eq!(r["status"], "failed");
    assert!(r["error"].as_str().unwrap().contains("no object"), "{r}");
    assert!(room_events(&stack, &id, "virtual_care.recording.ready").await.is_empty());
    stack.stop().await;
}
