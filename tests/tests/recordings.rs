//! Recordings through the local gateway: each participant's consent gates
//! whether a recording room may be recorded (the doctor's Jitsi token's
//! `features.recording`), and leaves a line of their consent history.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use vcare_tests::TestStack;
use vcare_tests::rooms::{doctor, patient, room_body};

async fn call(stack: &TestStack, path: &str, token: &str, body: Value) -> (u16, Value) {
    let (status, _, out) =
        stack.send(stack.http.post(format!("{}{path}", stack.base)).bearer_auth(token).json(&body)).await;
    (status, out)
}

/// The doctor's Jitsi token's `context.features.recording`, read from the
/// token's claims (the signature is checked elsewhere).
async fn doctor_may_record(stack: &TestStack, room: &str) -> String {
    let doc = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let (status, token) = call(stack, &format!("/v1/virtual-care/rooms/{room}/tokens"), &doc, json!({})).await;
    assert_eq!(status, 201, "{token}");
    let payload = token["token"].as_str().unwrap().split('.').nth(1).unwrap().to_owned();
    use base64::Engine;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["context"]["features"]["recording"].as_str().unwrap().to_owned()
}

fn second_patient() -> Value {
    json!({"userId": "u-pat2", "role": "patient", "displayName": "Omid"})
}

#[tokio::test]
async fn a_recording_room_is_recorded_only_once_every_listed_patient_said_yes() {
    let stack = TestStack::start().await;
    let doc = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let mut body = room_body("apt-rec", Utc::now() + Duration::minutes(5), &[doctor(), patient(), second_patient()]);
    body["recording"] = json!(true);
    body["lobby"] = json!(false);
    let (status, room) = call(&stack, "/v1/virtual-care/rooms", &doc, body).await;
    assert_eq!(status, 201, "{room}");
    let id = room["roomId"].as_str().unwrap().to_owned();
    let consent = format!("/v1/virtual-care/rooms/{id}/consent");
    let pat = stack.token("u-pat", Some("c-1"), &["patient"]);
    let pat2 = stack.token("u-pat2", Some("c-1"), &["patient"]);

    assert_eq!(doctor_may_record(&stack, &id).await, "false", "nobody said yes");
    let (status, said) = call(&stack, &consent, &pat, json!({"recording": true})).await;
    assert_eq!(status, 200, "{said}");
    assert_eq!(
        (&said["userId"], &said["recording"], &said["recordingAllowed"]),
        (&json!("u-pat"), &json!(true), &json!(false))
    );
    assert_eq!(doctor_may_record(&stack, &id).await, "false", "one patient of two");
    // The doctor's own answer does not gate it.
    assert_eq!(call(&stack, &consent, &doc, json!({"recording": true})).await.0, 200);
    let (_, said) = call(&stack, &consent, &pat2, json!({"recording": true})).await;
    assert_eq!(said["recordingAllowed"], true, "{said}");
    assert_eq!(doctor_may_record(&stack, &id).await, "true", "every patient said yes");
    // A yes taken back closes it; the same answer again changes nothing.
    let (_, said) = call(&stack, &consent, &pat2, json!({"recording": false})).await;
    assert_eq!(said["recordingAllowed"], false);
    let (_, again) = call(&stack, &consent, &pat2, json!({"recording": false})).await;
    assert_eq!(again["at"], said["at"], "a repeat is the answer standing");
    assert_eq!(doctor_may_record(&stack, &id).await, "false");

    // Each change is a line of the participant's consent history.
    let (status, _, history) = stack.get("/v1/communication/recipients/u-pat2/consents", Some(&pat2)).await;
    assert_eq!(status, 200, "{history}");
    let lines: Vec<(Value, Value, Value, bool)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["category"].clone(), e["granted"].clone(), e["source"].clone(), e.get("channel").is_none()))
        .collect();
    let line = |granted: bool| (json!("recording"), json!(granted), json!("api"), true);
    assert_eq!(lines.len(), 2, "{history}");
    assert!(lines.contains(&line(true)) && lines.contains(&line(false)), "{history}");
    stack.stop().await;
}

#[tokio::test]
async fn consent_is_for_listed_participants_themselves_and_bad_bodies_change_nothing() {
    let stack = TestStack::start().await;
    let doc = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let mut body = room_body("apt-rec-bad", Utc::now() + Duration::minutes(5), &[doctor(), patient()]);
    body["recording"] = json!(true);
    let (_, room) = call(&stack, "/v1/virtual-care/rooms", &doc, body).await;
    let id = room["roomId"].as_str().unwrap().to_owned();
    let consent = format!("/v1/virtual-care/rooms/{id}/consent");
    let pat = stack.token("u-pat", Some("c-1"), &["patient"]);
    for (who, token) in [
        ("a patient not listed", stack.token("u-x", Some("c-1"), &["patient"])),
        ("staff not listed", stack.token("u-admin", Some("c-1"), &["clinic-admin"])),
        ("another clinic's listed id", stack.token("u-pat", Some("c-2"), &["patient"])),
    ] {
        let (status, problem) = call(&stack, &consent, &token, json!({"recording": true})).await;
        assert_eq!(status, 404, "{who}: {problem}");
    }
    for bad in [json!({}), json!({"recording": "yes"}), json!({"recording": true, "userId": "u-pat2"}), json!([])] {
        let (status, problem) = call(&stack, &consent, &pat, bad.clone()).await;
        assert_eq!((status, &problem["status"]), (400, &json!(400)), "{bad}: {problem}");
    }
    let (status, _) =
        call(&stack, "/v1/virtual-care/rooms/rm_nosuchroomnosuchroom0000/consent", &pat, json!({"recording": true}))
            .await;
    assert_eq!(status, 404);
    let (_, _, history) = stack.get("/v1/communication/recipients/u-pat/consents", Some(&pat)).await;
    assert_eq!(history["items"], json!([]), "nothing written");
    assert_eq!(doctor_may_record(&stack, &id).await, "false");
    // An ended room's answer is settled.
    assert_eq!(call(&stack, &format!("/v1/virtual-care/rooms/{id}/end"), &doc, json!({})).await.0, 200);
    let (status, problem) = call(&stack, &consent, &pat, json!({"recording": true})).await;
    assert_eq!(status, 409, "{problem}");
    stack.stop().await;
}

/// A recording room starting in 5 minutes whose patient said yes.
async fn consented_room(stack: &TestStack, appointment: &str) -> Value {
    let doc = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let mut body = room_body(appointment, Utc::now() + Duration::minutes(5), &[doctor(), patient()]);
    body["recording"] = json!(true);
    body["lobby"] = json!(false);
    let (status, room) = call(stack, "/v1/virtual-care/rooms", &doc, body).await;
    assert_eq!(status, 201, "{room}");
    let consent = format!("/v1/virtual-care/rooms/{}/consent", room["roomId"].as_str().unwrap());
    let pat = stack.token("u-pat", Some("c-1"), &["patient"]);
    assert_eq!(call(stack, &consent, &pat, json!({"recording": true})).await.0, 200);
    room
}

/// A Jibri recording directory as Jibri leaves it: the MP4 and metadata.json.
fn jibri_dir(room: &Value, bytes: &[u8]) -> std::path::PathBuf {
    let dir = vcare_tests::root().join("target/tmp").join(vcare_domain::ids::prefixed("jibri"));
    std::fs::create_dir_all(&dir).unwrap();
    let name = room["jitsiRoom"].as_str().unwrap();
    std::fs::write(dir.join(format!("{name}_2026-12-02-10-30-00.mp4")), bytes).unwrap();
    let meta = json!({"meeting_url": format!("https://meet.vcare.local/{name}"), "participants": []});
    std::fs::write(dir.join("metadata.json"), meta.to_string()).unwrap();
    dir
}

/// Runs the documented finalize script, as written, against the stack.
async fn finalize(stack: &TestStack, dir: &std::path::Path, secret: &str) -> std::process::Output {
    tokio::process::Command::new("bash")
        .arg(vcare_tests::root().join("infra/jibri/vcare-finalize.sh"))
        .arg(dir)
        .env("VCARE_API", &stack.base)
        .env("VCARE_JIBRI_SECRET", secret)
        .output()
        .await
        .unwrap()
}

async fn recordings(stack: &TestStack, room: &Value, token: &str) -> (u16, Value) {
    let path = format!("/v1/virtual-care/rooms/{}/recordings", room["roomId"].as_str().unwrap());
    let (status, _, out) = stack.get(&path, Some(token)).await;
    (status, out)
}

#[tokio::test]
async fn jibris_finalize_script_uploads_a_recording_that_is_checked_before_it_is_ready() {
    let stack = TestStack::start().await;
    let room = consented_room(&stack, "apt-jibri").await;
    let video: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let dir = jibri_dir(&room, &video);
    let out = finalize(&stack, &dir, vcare_tests::JITSI_WEBHOOK_SECRET).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        std::fs::read_dir(&dir).unwrap().all(|e| !e.unwrap().path().to_string_lossy().ends_with(".mp4")),
        "removed once checked"
    );

    // The doctor sees it ready, with a short download URL that gives the bytes back.
    let doc = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let (status, list) = recordings(&stack, &room, &doc).await;
    assert_eq!(status, 200, "{list}");
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let r = &items[0];
    assert_eq!((&r["status"], &r["sizeBytes"]), (&json!("ready"), &json!(video.len())));
    let expires: chrono::DateTime<Utc> = r["expiresAt"].as_str().unwrap().parse().unwrap();
    assert!(expires <= Utc::now() + Duration::minutes(15));
    let got = reqwest::get(r["downloadUrl"].as_str().unwrap()).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), video.as_slice());

    // In the recordings bucket, under the recordings key.
    let s3 = aws_sdk_s3::Client::new(&stack.sdk);
    let bucket = stack.gateway.resource("RecordingBucket").unwrap().reference.clone();
    let key = format!("recordings/c-1/{}/{}.mp4", room["roomId"].as_str().unwrap(), r["recordingId"].as_str().unwrap());
    let head = s3.head_object().bucket(&bucket).key(&key).send().await.unwrap();
    assert_eq!(head.server_side_encryption().map(|e| e.as_str()), Some("aws:kms"));
    let recording_key = stack.gateway.resource("RecordingKey").unwrap().attrs["Arn"].clone();
    let key_id = recording_key.rsplit('/').next().unwrap().to_owned();
    assert!(head.ssekms_key_id().unwrap().ends_with(&key_id), "{:?} is the recordings key", head.ssekms_key_id());
    let ready =
        vcare_tests::rooms::room_events(&stack, room["roomId"].as_str().unwrap(), "virtual_care.recording.ready").await;
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0]["data"]["recordingId"], r["recordingId"]);

    // Who may see it: the clinic's admin yes; the patient and other clinics no.
    assert_eq!(recordings(&stack, &room, &stack.token("u-admin", Some("c-1"), &["clinic-admin"])).await.0, 200);
    assert_eq!(recordings(&stack, &room, &stack.token("u-pat", Some("c-1"), &["patient"])).await.0, 403);
    assert_eq!(recordings(&stack, &room, &stack.token("u-nurse", Some("c-1"), &["nurse"])).await.0, 403);
    assert_eq!(recordings(&stack, &room, &stack.token("u-doc", Some("c-2"), &["doctor"])).await.0, 404);

    // Completing again is the same answer and no second event.
    let complete = format!("/v1/virtual-care/jibri/recordings/{}/complete", r["recordingId"].as_str().unwrap());
    let (status, _, again) = stack
        .send(
            stack
                .http
                .post(format!("{}{complete}", stack.base))
                .header("x-jitsi-shared-secret", vcare_tests::JITSI_WEBHOOK_SECRET),
        )
        .await;
    assert_eq!((status, &again["status"]), (200, &json!("ready")), "{again}");
    assert_eq!(
        vcare_tests::rooms::room_events(&stack, room["roomId"].as_str().unwrap(), "virtual_care.recording.ready")
            .await
            .len(),
        1
    );
    stack.stop().await;
}

async fn jibri(stack: &TestStack, path: &str, secret: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut request = stack.http.post(format!("{}{path}", stack.base));
    if let Some(s) = secret {
        request = request.header("x-jitsi-shared-secret", s);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let (status, _, out) = stack.send(request).await;
    (status, out)
}

#[tokio::test]
async fn uploads_and_completes_that_are_not_right_are_refused_and_change_nothing() {
    let stack = TestStack::start().await;
    let secret = Some(vcare_tests::JITSI_WEBHOOK_SECRET);
    let room = consented_room(&stack, "apt-jibri-bad").await;
    let name = room["jitsiRoom"].as_str().unwrap().to_owned();
    let upload = "/v1/virtual-care/jibri/recordings";
    let good = json!({"roomName": name, "contentType": "video/mp4", "sizeBytes": 1000});

    assert_eq!(jibri(&stack, upload, None, Some(good.clone())).await.0, 401, "no secret");
    assert_eq!(jibri(&stack, upload, Some("wrong"), Some(good.clone())).await.0, 401, "another secret");
    // The secret is checked before the body: without it, a bad body says nothing.
    assert_eq!(jibri(&stack, upload, None, Some(json!({"sizeBytes": "x"}))).await.0, 401);
    let out = finalize(&stack, &jibri_dir(&room, b"x"), "wrong").await;
    assert!(!out.status.success(), "the script fails loudly on a refusal");
    for bad in [
        json!({"roomName": name, "contentType": "video/webm", "sizeBytes": 1000}),
        json!({"roomName": name, "contentType": "video/mp4", "sizeBytes": 0}),
        json!({"roomName": name, "contentType": "video/mp4", "sizeBytes": 200u64 << 30}),
        json!({"roomName": name, "contentType": "video/mp4"}),
        json!({"roomName": name, "contentType": "video/mp4", "sizeBytes": 1000, "extra": 1}),
    ] {
        let (status, problem) = jibri(&stack, upload, secret, Some(bad.clone())).await;
        assert_eq!((status, &problem["status"]), (400, &json!(400)), "{bad}: {problem}");
    }
    let unknown = json!({"roomName": "vc-nobody", "contentType": "video/mp4", "sizeBytes": 1000});
    assert_eq!(jibri(&stack, upload, secret, Some(unknown)).await.0, 404);
    // A recording room whose patient has not said yes takes no upload.
    let doc = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let mut body = room_body("apt-jibri-no", Utc::now() + Duration::minutes(5), &[doctor(), patient()]);
    body["recording"] = json!(true);
    let (_, unconsented) = call(&stack, "/v1/virtual-care/rooms", &doc, body).await;
    let refused = json!({"roomName": unconsented["jitsiRoom"], "contentType": "video/mp4", "sizeBytes": 1000});
    let (status, problem) = jibri(&stack, upload, secret, Some(refused)).await;
    assert_eq!(status, 409, "{problem}");
    let (_, none) = recordings(&stack, &unconsented, &doc).await;
    assert_eq!(none, json!([]));

    // Completes of objects that are not what was presigned: 409, still uploading.
    let s3 = aws_sdk_s3::Client::new(&stack.sdk);
    let bucket = stack.gateway.resource("RecordingBucket").unwrap().reference.clone();
    let recording_key = stack.gateway.resource("RecordingKey").unwrap().attrs["Arn"].clone();
    let data_key = stack.gateway.resource("DataKey").unwrap().attrs["Arn"].clone();
    let complete = |id: &str| format!("/v1/virtual-care/jibri/recordings/{id}/complete");
    assert_eq!(jibri(&stack, &complete("rec_nosuchrecording0000000000"), secret, None).await.0, 404);
    type Put = fn(
        aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder,
        &str,
        &str,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
    let cases: [(&str, usize, Option<Put>); 5] = [
        ("missing", 0, None),
        (
            "too large",
            1001,
            Some(|p, k, _| p.content_type("video/mp4").server_side_encryption("aws:kms".into()).ssekms_key_id(k)),
        ),
        (
            "another type",
            1000,
            Some(|p, k, _| p.content_type("video/webm").server_side_encryption("aws:kms".into()).ssekms_key_id(k)),
        ),
        (
            "SSE-S3, not the recordings key",
            1000,
            Some(|p, _, _| p.content_type("video/mp4").server_side_encryption("AES256".into())),
        ),
        (
            "another key",
            1000,
            Some(|p, _, other| {
                p.content_type("video/mp4").server_side_encryption("aws:kms".into()).ssekms_key_id(other)
            }),
        ),
    ];
    for (what, size, put) in cases {
        let (status, up) = jibri(&stack, upload, secret, Some(good.clone())).await;
        assert_eq!(status, 201, "{up}");
        let id = up["recordingId"].as_str().unwrap().to_owned();
        if let Some(put) = put {
            let key = format!("recordings/c-1/{}/{id}.mp4", room["roomId"].as_str().unwrap());
            let request = s3.put_object().bucket(&bucket).key(&key).body(vec![7u8; size].into());
            put(request, &recording_key, &data_key).send().await.unwrap();
        }
        let (status, problem) = jibri(&stack, &complete(&id), secret, None).await;
        assert_eq!((status, &problem["status"]), (409, &json!(409)), "{what}: {problem}");
        assert_eq!(jibri(&stack, &complete(&id), None, None).await.0, 401, "{what}: no secret");
    }
    let (_, list) = recordings(&stack, &room, &doc).await;
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|r| r["status"] == "uploading" && r.get("downloadUrl").is_none()), "{list}");
    assert!(
        vcare_tests::rooms::room_events(&stack, room["roomId"].as_str().unwrap(), "virtual_care.recording.ready")
            .await
            .is_empty()
    );
    stack.stop().await;
}

async fn send(
    stack: &TestStack,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = stack.http.request(method, format!("{}{path}", stack.base)).bearer_auth(token);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let (status, _, out) = stack.send(request).await;
    (status, out)
}

#[tokio::test]
async fn a_recording_under_legal_hold_cannot_be_deleted_by_anyone_and_one_without_is_deleted_whole() {
    let stack = TestStack::start().await;
    let room = consented_room(&stack, "apt-hold").await;
    let dir = jibri_dir(&room, &[9u8; 4096]);
    let out = finalize(&stack, &dir, vcare_tests::JITSI_WEBHOOK_SECRET).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let (_, list) = recordings(&stack, &room, &doc).await;
    let id = list[0]["recordingId"].as_str().unwrap().to_owned();
    let key = format!("recordings/c-1/{}/{id}.mp4", room["roomId"].as_str().unwrap());
    let s3 = aws_sdk_s3::Client::new(&stack.sdk);
    let bucket = stack.gateway.resource("RecordingBucket").unwrap().reference.clone();
    let admin = stack.token("u-admin", Some("c-1"), &["clinic-admin"]);
    let hold = format!("/v1/virtual-care/recordings/{id}/hold");
    let delete = format!("/v1/virtual-care/recordings/{id}");
    use reqwest::Method;

    // Only the clinic's admins; another clinic's admin does not see it.
    assert_eq!(send(&stack, Method::PUT, &hold, &doc, Some(json!({"hold": true}))).await.0, 403);
    assert_eq!(send(&stack, Method::DELETE, &delete, &doc, None).await.0, 403);
    let other = stack.token("u-admin", Some("c-2"), &["clinic-admin"]);
    assert_eq!(send(&stack, Method::PUT, &hold, &other, Some(json!({"hold": true}))).await.0, 404);
    assert_eq!(send(&stack, Method::DELETE, &delete, &other, None).await.0, 404);
    for bad in [json!({}), json!({"hold": "yes"}), json!({"hold": true, "why": "x"})] {
        assert_eq!(send(&stack, Method::PUT, &hold, &admin, Some(bad.clone())).await.0, 400, "{bad}");
    }
    assert_eq!(
        send(&stack, Method::DELETE, "/v1/virtual-care/recordings/rec_nosuchrecording0000000000", &admin, None).await.0,
        404
    );

    // Under hold: vcare refuses, and S3 itself refuses the object's delete.
    let (status, held) = send(&stack, Method::PUT, &hold, &admin, Some(json!({"hold": true}))).await;
    assert_eq!((status, &held["hold"]), (200, &json!(true)), "{held}");
    let lock = s3.get_object_legal_hold().bucket(&bucket).key(&key).send().await.unwrap();
    assert_eq!(lock.legal_hold().and_then(|h| h.status()).map(|s| s.as_str()), Some("ON"));
    let (status, problem) = send(&stack, Method::DELETE, &delete, &admin, None).await;
    assert_eq!(status, 409, "{problem}");
    let versions = s3.list_object_versions().bucket(&bucket).prefix(&key).send().await.unwrap();
    let version = versions.versions()[0].version_id().unwrap().to_owned();
    let direct = s3.delete_object().bucket(&bucket).key(&key).version_id(&version).send().await;
    assert!(direct.is_err(), "Object Lock refuses even the account's own delete");
    assert!(s3.head_object().bucket(&bucket).key(&key).send().await.is_ok(), "still there");

    // Lifted: deleted whole (no version left), the record says so, its event once.
    let (status, lifted) = send(&stack, Method::PUT, &hold, &admin, Some(json!({"hold": false}))).await;
    assert_eq!((status, &lifted["hold"]), (200, &json!(false)));
    assert_eq!(send(&stack, Method::DELETE, &delete, &admin, None).await.0, 204);
    let versions = s3.list_object_versions().bucket(&bucket).prefix(&key).send().await.unwrap();
    assert!(versions.versions().is_empty() && versions.delete_markers().is_empty(), "{versions:?}");
    let (_, list) = recordings(&stack, &room, &doc).await;
    assert_eq!(list[0]["status"], "deleted");
    assert!(list[0].get("downloadUrl").is_none());
    let deleted =
        vcare_tests::rooms::room_events(&stack, room["roomId"].as_str().unwrap(), "virtual_care.recording.deleted")
            .await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        (&deleted[0]["data"]["reason"], &deleted[0]["data"]["deletedBy"]),
        (&json!("deleted"), &json!("u-admin"))
    );
    assert_eq!(send(&stack, Method::DELETE, &delete, &admin, None).await.0, 404, "gone");
    assert_eq!(send(&stack, Method::PUT, &hold, &admin, Some(json!({"hold": true}))).await.0, 409, "nothing to hold");
    stack.stop().await;
}

#[tokio::test]
async fn a_large_recording_goes_in_parts_each_presigned_when_sent_and_joined_only_as_uploaded() {
    const PART: usize = 5 * 1024 * 1024;
    let stack =
        TestStack::start_with(vcare_tests::root().join("infra/template.yaml"), &vcare_local::Registry::vcare(), |c| {
            c.parameters.insert("RecordingPartBytes".into(), PART.to_string());
        })
        .await;
    let secret = Some(vcare_tests::JITSI_WEBHOOK_SECRET);

    // The documented script, as written: two full parts and a short one.
    let room = consented_room(&stack, "apt-jibri-parts").await;
    let video: Vec<u8> = (0..(2 * PART + 123_457)).map(|i| (i % 253) as u8).collect();
    let out = finalize(&stack, &jibri_dir(&room, &video), vcare_tests::JITSI_WEBHOOK_SECRET).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let (_, list) = recordings(&stack, &room, &doc).await;
    let r = &list[0];
    assert_eq!((&r["status"], &r["sizeBytes"]), (&json!("ready"), &json!(video.len())), "{list}");
    let got = reqwest::get(r["downloadUrl"].as_str().unwrap()).await.unwrap().bytes().await.unwrap();
    assert!(got.as_ref() == video.as_slice(), "the parts joined are the file");
    let s3 = aws_sdk_s3::Client::new(&stack.sdk);
    let bucket = stack.gateway.resource("RecordingBucket").unwrap().reference.clone();
    let key = format!("recordings/c-1/{}/{}.mp4", room["roomId"].as_str().unwrap(), r["recordingId"].as_str().unwrap());
    let head = s3.head_object().bucket(&bucket).key(&key).send().await.unwrap();
    assert_eq!(head.server_side_encryption().map(|e| e.as_str()), Some("aws:kms"), "encrypted as the upload was made");

    // By hand: a part the upload does not have, a wrong ETag, a part left out.
    let other = consented_room(&stack, "apt-jibri-parts-bad").await;
    let size = PART + 10;
    let body = json!({"roomName": other["jitsiRoom"], "contentType": "video/mp4", "sizeBytes": size});
    let (status, upload) = jibri(&stack, "/v1/virtual-care/jibri/recordings", secret, Some(body)).await;
    assert_eq!(status, 201, "{upload}");
    assert!(upload.get("uploadUrl").is_none());
    assert_eq!(
        upload["parts"],
        json!([{"partNumber": 1, "offset": 0, "sizeBytes": PART}, {"partNumber": 2, "offset": PART, "sizeBytes": 10}])
    );
    let id = upload["recordingId"].as_str().unwrap().to_owned();
    let part = |n: &str| format!("/v1/virtual-care/jibri/recordings/{id}/parts/{n}");
    assert_eq!(jibri(&stack, &part("3"), secret, None).await.0, 404);
    assert_eq!(jibri(&stack, &part("x"), secret, None).await.0, 404);
    assert_eq!(jibri(&stack, &part("1"), None, None).await.0, 401);
    let mut etags = vec![];
    for (n, len) in [("1", PART), ("2", 10)] {
        let (status, presigned) = jibri(&stack, &part(n), secret, None).await;
        assert_eq!(status, 200, "{presigned}");
        let mut put = stack.http.put(presigned["uploadUrl"].as_str().unwrap()).body(vec![7u8; len]);
        for (k, v) in presigned["uploadHeaders"].as_object().unwrap() {
            put = put.header(k, v.as_str().unwrap());
        }
        let answer = put.send().await.unwrap();
        assert_eq!(answer.status(), 200);
        etags.push(answer.headers()["etag"].to_str().unwrap().to_owned());
    }
    let complete = format!("/v1/virtual-care/jibri/recordings/{id}/complete");
    let named = |parts: Value| Some(json!({"parts": parts}));
    assert_eq!(jibri(&stack, &complete, secret, None).await.0, 400, "an upload in parts names them");
    let one = json!([{"partNumber": 1, "etag": etags[0]}]);
    assert_eq!(jibri(&stack, &complete, secret, named(one)).await.0, 400, "every part");
    let forged =
        json!([{"partNumber": 1, "etag": etags[0]}, {"partNumber": 2, "etag": "\"0123456789abcdef0123456789abcdef\""}]);
    let (status, problem) = jibri(&stack, &complete, secret, named(forged)).await;
    assert_eq!(status, 409, "{problem}");
    let (_, list) = recordings(&stack, &other, &doc).await;
    assert_eq!(list[0]["status"], "uploading", "nothing changed");
    let right = json!([{"partNumber": 2, "etag": etags[1]}, {"partNumber": 1, "etag": etags[0]}]);
    let (status, done) = jibri(&stack, &complete, secret, named(right.clone())).await;
    assert_eq!((status, &done["status"]), (200, &json!("ready")), "{done}");
    assert_eq!(jibri(&stack, &complete, secret, named(right)).await.0, 200, "again: the same answer");
    assert_eq!(jibri(&stack, &part("1"), secret, None).await.0, 409, "no parts once complete");
    stack.stop().await;
}
