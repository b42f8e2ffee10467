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
