//! OpenVidu 3 (LiveKit) consultations through the local gateway, against
//! the LiveKit stand-in: rooms on the clinic's provider, tokens checked by
//! LiveKit's own verifier (the `livekit-api` package, not vcare's code),
//! rooms made and deleted over Twirp with one grant per call, webhooks in
//! any order and repeated, bad webhooks refused, and the sweeps: a failed
//! end retried, an end that never came settled.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use vcare_tests::livekit::{API_KEY, API_SECRET, signed_webhook};
use vcare_tests::rooms::{doctor, patient, room_body};
use vcare_tests::{OPENVIDU_CLINIC, TestStack, root};

const WEBHOOK: &str = "/v1/virtual-care/openvidu/webhook";

/// LiveKit's own checks (`tests/python/livekit_check.py`).
fn livekit_check(kind: &str, value: &str, stdin: Option<&str>) -> Result<Value, String> {
    use std::io::Write;
    let mut child = std::process::Command::new(root().join(".venv/bin/python"))
        .arg(root().join("tests/python/livekit_check.py"))
        .args([kind, API_KEY, API_SECRET, value])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the project's Python");
    child.stdin.take().unwrap().write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default().to_owned())
    }
}

async fn post(stack: &TestStack, path: &str, token: &str, body: Value) -> (u16, Value) {
    let (status, _, body) =
        stack.send(stack.http.post(format!("{}{path}", stack.base)).bearer_auth(token).json(&body)).await;
    (status, body)
}

async fn get(stack: &TestStack, path: &str, token: &str) -> (u16, Value) {
    let (status, _, body) = stack.get(path, Some(token)).await;
    (status, body)
}

/// A webhook as LiveKit posts it: the raw body and `Authorization`, if any.
async fn deliver(stack: &TestStack, body: String, authorization: Option<&str>) -> (u16, Value) {
    let mut request = stack
        .http
        .post(format!("{}{WEBHOOK}", stack.base))
        .header("content-type", "application/webhook+json")
        .body(body);
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    let (status, _, body) = stack.send(request).await;
    (status, body)
}

async fn signed(stack: &TestStack, event: &Value) -> u16 {
    let (body, auth) = signed_webhook(event, API_SECRET, Utc::now().timestamp());
    deliver(stack, body, Some(&auth)).await.0
}

fn doc_token(stack: &TestStack) -> String {
    stack.token("u-doc", Some(OPENVIDU_CLINIC), &["doctor"])
}

/// An OpenVidu room starting in 5 minutes (its window is open), without a
/// waiting room (tests/waiting_room.rs has those).
async fn room(stack: &TestStack, appointment: &str) -> Value {
    let mut body = room_body(appointment, Utc::now() + Duration::minutes(5), &[doctor(), patient()]);
    body["lobby"] = json!(false);
    let (status, room) = post(stack, "/v1/virtual-care/rooms", &doc_token(stack), body).await;
    assert_eq!(status, 201, "{room}");
    room
}

async fn token_of(stack: &TestStack, room: &Value, user: &str, role: &str) -> Value {
    let path = format!("/v1/virtual-care/rooms/{}/tokens", room["roomId"].as_str().unwrap());
    let (status, token) = post(stack, &path, &stack.token(user, Some(OPENVIDU_CLINIC), &[role]), json!({})).await;
    assert_eq!(status, 201, "{token}");
    token
}

async fn room_now(stack: &TestStack, room: &Value) -> Value {
    let path = format!("/v1/virtual-care/rooms/{}", room["roomId"].as_str().unwrap());
    let (status, room) = get(stack, &path, &doc_token(stack)).await;
    assert_eq!(status, 200, "{room}");
    room
}

async fn events(stack: &TestStack, room: &Value, kind: &str) -> Vec<Value> {
    vcare_tests::rooms::room_events(stack, room["roomId"].as_str().unwrap(), kind).await
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_openvidu_consultation_runs_end_to_end_on_the_clinics_provider() {
    let stack = TestStack::start().await;
    let lk = &stack.livekit;
    let room = room(&stack, "apt-ov-1").await;
    assert_eq!(room["provider"], "openvidu");
    assert_eq!(room["serverUrl"], lk.url.replace("http://", "ws://"));
    assert!(room.get("joinUrl").is_none() && room.get("prepared").is_none(), "{room}");
    let name = room["jitsiRoom"].as_str().unwrap().to_owned();
    assert!(lk.room(&name).is_none(), "the LiveKit room is made with the first token, not before");

    let doctor_token = token_of(&stack, &room, "u-doc", "doctor").await;
    let patient_token = token_of(&stack, &room, "u-pat", "patient").await;
    assert_eq!((&doctor_token["provider"], &doctor_token["moderator"]), (&json!("openvidu"), &json!(true)));
    assert_eq!(patient_token["moderator"], false);
    assert_eq!(doctor_token["serverUrl"], room["serverUrl"]);
    assert_eq!(at(&doctor_token["expiresAt"]), at(&room["scheduledEnd"]) + Duration::minutes(30));

    // LiveKit's own verifier reads the grants API.md promises.
    let d = livekit_check("token", doctor_token["token"].as_str().unwrap(), None).unwrap();
    assert_eq!((&d["identity"], &d["name"]), (&json!("u-doc"), &json!("Dr. Amini")));
    assert_eq!(d["metadata"], json!(r#"{"role":"doctor"}"#));
    let v = &d["video"];
    assert_eq!((&v["room"], &v["room_join"], &v["room_admin"]), (&json!(name), &json!(true), &json!(true)));
    assert_eq!(
        (&v["room_record"], &v["can_publish"], &v["can_subscribe"]),
        (&json!(false), &json!(true), &json!(true))
    );
    let p = livekit_check("token", patient_token["token"].as_str().unwrap(), None).unwrap();
    assert_eq!(
        (&p["identity"], &p["video"]["room_admin"], &p["video"]["room_record"]),
        (&json!("u-pat"), &json!(false), &json!(false))
    );
    assert!(livekit_check("token", &format!("{}x", patient_token["token"].as_str().unwrap()), None).is_err());

    // One CreateRoom for the room, with its limits and only roomCreate.
    let creates: Vec<_> = lk.calls().into_iter().filter(|c| c.method == "CreateRoom").collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert_eq!(creates[0].grant, json!({"roomCreate": true}));
    assert_eq!(creates[0].body["name"], json!(name));
    assert_eq!(
        (&creates[0].body["maxParticipants"], &creates[0].body["emptyTimeout"], &creates[0].body["departureTimeout"]),
        (&json!(10), &json!(300), &json!(60))
    );

    // Webhooks shuffled and repeated, as LiveKit's retries and its order
    // across resources deliver them.
    let t0 = Utc::now().timestamp();
    let patient_joined = lk.join(&name, "u-pat", t0 - 60);
    let doctor_joined = lk.join(&name, "u-doc", t0 - 120);
    let left = lk.leave(&name, "u-pat");
    let finished = lk.finish(&name, t0);
    let (raw, auth) = signed_webhook(&finished, API_SECRET, t0);
    assert_eq!(
        livekit_check("webhook", &auth, Some(&raw)).unwrap()["event"],
        "room_finished",
        "signed as LiveKit signs"
    );
    for event in [&patient_joined, &finished, &left, &doctor_joined, &patient_joined, &finished] {
        assert_eq!(signed(&stack, event).await, 200);
    }
    let ended = room_now(&stack, &room).await;
    assert_eq!(ended["status"], "ended");
    assert_eq!(at(&ended["startedAt"]).timestamp(), t0 - 120, "the earliest join, whatever came first");
    assert_eq!(at(&ended["endedAt"]).timestamp(), t0);
    assert_eq!(ended["durationSeconds"], 120);
    let started = events(&stack, &room, "virtual_care.consultation.started").await;
    let ends = events(&stack, &room, "virtual_care.consultation.ended").await;
    assert_eq!((started.len(), ends.len()), (1, 1));
    assert_eq!(ends[0]["data"]["provider"], "openvidu");
    stack.stop().await;
}

#[tokio::test]
async fn bad_webhooks_are_refused_and_change_nothing() {
    let stack = TestStack::start().await;
    let lk = &stack.livekit;
    let room = room(&stack, "apt-ov-bad").await;
    token_of(&stack, &room, "u-pat", "patient").await;
    let name = room["jitsiRoom"].as_str().unwrap().to_owned();
    let now = Utc::now().timestamp();
    let joined = lk.join(&name, "u-pat", now);
    let (body, auth) = signed_webhook(&joined, API_SECRET, now);
    let tampered = body.replace(&now.to_string(), &(now - 3600).to_string());
    assert_ne!(tampered, body);
    let (_, stale) = signed_webhook(&joined, API_SECRET, now - 3600);
    let (_, forged) = signed_webhook(&joined, "not the secret", now);
    let bearer = format!("Bearer {auth}");
    let participant = token_of(&stack, &room, "u-doc", "doctor").await["token"].as_str().unwrap().to_owned();
    for (what, body, authorization) in [
        ("unsigned", body.clone(), None),
        ("tampered", tampered, Some(auth.as_str())),
        ("stale", body.clone(), Some(stale.as_str())),
        ("another secret", body.clone(), Some(forged.as_str())),
        ("Bearer", body.clone(), Some(bearer.as_str())),
        ("a participant's token", body.clone(), Some(participant.as_str())),
    ] {
        let (status, problem) = deliver(&stack, body, authorization).await;
        assert_eq!(status, 401, "{what}: {problem}");
        assert_eq!(problem["status"], 401);
    }
    assert_eq!(room_now(&stack, &room).await["status"], "scheduled", "nothing changed");
    // Signed but for a room vcare does not know (or a Jitsi room's name): 200, ignored.
    let unknown = lk.join("vc-nobody-here", "u-x", now);
    assert_eq!(signed(&stack, &unknown).await, 200);
    let (status, _) = deliver(&stack, "{not json".into(), Some(&signed_webhook(&json!({}), API_SECRET, now).1)).await;
    assert_eq!(status, 401, "the hash is of the bytes received");
    let garbage = "{not json";
    let sha = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, garbage.as_bytes()))
    };
    let claims = json!({"iss": API_KEY, "nbf": now, "exp": now + 300, "sha256": sha});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(API_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(deliver(&stack, garbage.into(), Some(&token)).await.0, 400, "signed but not a webhook");
    // Over 64 KiB: 413 before its bytes are hashed, signed or not.
    let mut large = joined.clone();
    large["padding"] = json!("x".repeat(64 * 1024));
    let (large, large_auth) = signed_webhook(&large, API_SECRET, now);
    let (status, problem) = deliver(&stack, large, Some(&large_auth)).await;
    assert_eq!((status, &problem["status"]), (413, &json!(413)), "{problem}");
    // The real one still applies.
    assert_eq!(signed(&stack, &joined).await, 200);
    assert_eq!(room_now(&stack, &room).await["status"], "active");
    stack.stop().await;
}

async fn scheduler(stack: &TestStack, extra: &[(&str, &str)]) -> std::sync::Arc<reminder_scheduler::Scheduler> {
    let mut env = stack.gateway.function("ReminderSchedulerFunction").unwrap().def.environment.clone();
    env.insert("OPENVIDU_BACKOFF_MS".into(), "5".into());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    reminder_scheduler::scheduler(&vcare_runtime::Env::from_map(env), &stack.sdk).await.unwrap()
}

async fn pending_end(stack: &TestStack, room: &Value) -> Option<Value> {
    vcare_tests::rooms::pending_end(stack, room["clinicId"].as_str().unwrap(), room["roomId"].as_str().unwrap()).await
}

#[tokio::test]
async fn ending_deletes_the_livekit_room_and_a_failed_delete_is_retried_by_the_sweep() {
    let stack = TestStack::start().await;
    let lk = &stack.livekit;
    let end = |room: &Value| format!("/v1/virtual-care/rooms/{}/end", room["roomId"].as_str().unwrap());

    let first = room(&stack, "apt-ov-end").await;
    token_of(&stack, &first, "u-doc", "doctor").await;
    let name = first["jitsiRoom"].as_str().unwrap().to_owned();
    assert!(lk.room(&name).is_some());
    assert_eq!(post(&stack, &end(&first), &doc_token(&stack), json!({})).await.0, 200);
    assert!(lk.room(&name).is_none(), "ending deletes the LiveKit room");
    let deletes: Vec<_> = lk.calls().into_iter().filter(|c| c.method == "DeleteRoom").collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].grant, json!({"roomCreate": true}), "only the grant DeleteRoom needs");
    assert!(pending_end(&stack, &first).await.is_none());

    // LiveKit down for the whole of room-end's retries: ended in vcare, kept.
    let second = room(&stack, "apt-ov-end-2").await;
    token_of(&stack, &second, "u-doc", "doctor").await;
    let name = second["jitsiRoom"].as_str().unwrap().to_owned();
    lk.fail("DeleteRoom", 503, 3);
    let (status, ended) = post(&stack, &end(&second), &doc_token(&stack), json!({})).await;
    assert_eq!((status, &ended["status"]), (200, &json!("ended")), "{ended}");
    assert!(lk.room(&name).is_some());
    let kept = pending_end(&stack, &second).await.expect("the failure is kept");
    assert_eq!(kept["attempts"], 1);
    assert!(kept["error"].as_str().unwrap().contains("503"), "{kept}");

    // Not due yet a second later; a minute later the sweep retries.
    let sweep = scheduler(&stack, &[]).await;
    let now = Utc::now();
    assert_eq!(sweep.run(now).await.unwrap().rooms, 0);
    lk.fail("DeleteRoom", 503, 3);
    assert_eq!(sweep.run(now + Duration::minutes(2)).await.unwrap().rooms, 0, "failed again");
    assert_eq!(pending_end(&stack, &second).await.unwrap()["attempts"], 2);
    assert_eq!(sweep.run(now + Duration::minutes(3)).await.unwrap().rooms, 0, "the next try is 2 minutes on");
    assert_eq!(sweep.run(now + Duration::minutes(5)).await.unwrap().rooms, 1);
    assert!(lk.room(&name).is_none(), "deleted on the retry");
    assert!(pending_end(&stack, &second).await.is_none(), "and no longer pending");
    assert_eq!(sweep.run(now + Duration::minutes(30)).await.unwrap().rooms, 0, "done once");
    stack.stop().await;
}

#[tokio::test]
async fn a_room_whose_end_never_came_is_settled_when_its_window_closes() {
    let stack = TestStack::start().await;
    let lk = &stack.livekit;
    let room = room(&stack, "apt-ov-lost").await;
    token_of(&stack, &room, "u-pat", "patient").await;
    let name = room["jitsiRoom"].as_str().unwrap().to_owned();
    assert_eq!(signed(&stack, &lk.join(&name, "u-pat", Utc::now().timestamp())).await, 200);
    assert_eq!(room_now(&stack, &room).await["status"], "active");
    let closes = at(&room["scheduledEnd"]) + Duration::minutes(30);
    let sweep = scheduler(&stack, &[]).await;
    // Still connected after the window: asked again later, not ended.
    assert_eq!(sweep.run(closes + Duration::minutes(1)).await.unwrap().rooms, 0);
    assert_eq!(room_now(&stack, &room).await["status"], "active");
    let lists: Vec<_> = lk.calls().into_iter().filter(|c| c.method == "ListParticipants").collect();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].grant, json!({"roomAdmin": true, "room": name}), "roomAdmin for this room only");
    // The patient leaves, and LiveKit's webhooks are lost.
    lk.leave(&name, "u-pat");
    assert_eq!(sweep.run(closes + Duration::minutes(12)).await.unwrap().rooms, 1);
    let settled = room_now(&stack, &room).await;
    assert_eq!(settled["status"], "ended");
    assert_eq!(events(&stack, &room, "virtual_care.consultation.ended").await.len(), 1);
    assert!(lk.room(&name).is_none(), "and its LiveKit room deleted");
    // A late room_finished changes nothing.
    assert_eq!(signed(&stack, &lk.finish(&name, Utc::now().timestamp())).await, 200);
    assert_eq!(events(&stack, &room, "virtual_care.consultation.ended").await.len(), 1);
    stack.stop().await;
}

/// RemoveParticipant, as vcare's LiveKit client calls it: a server token
/// with `roomAdmin` for that room only, the participant gone, and a
/// participant already gone is done (no vcare route removes anyone yet).
#[tokio::test]
async fn remove_participant_carries_room_admin_for_that_room_only() {
    let stack = TestStack::start().await;
    let lk = &stack.livekit;
    let room = room(&stack, "apt-ov-remove").await;
    token_of(&stack, &room, "u-doc", "doctor").await;
    let name = room["jitsiRoom"].as_str().unwrap().to_owned();
    lk.join(&name, "u-pat", Utc::now().timestamp());
    lk.join(&name, "u-doc", Utc::now().timestamp());
    let service = vcare_livekit::RoomService {
        url: lk.url.clone(),
        credentials: std::sync::Arc::new(vcare_livekit::Credentials::new(API_KEY, API_SECRET.as_bytes())),
        http: vcare_runtime::http::LazyClient::new(),
        attempts: 3,
        backoff: std::time::Duration::from_millis(5),
    };
    lk.fail("RemoveParticipant", 503, 1);
    service.remove_participant(&name, "u-pat").await.expect("retried past one 503");
    assert_eq!(lk.room(&name).unwrap().participants, vec!["u-doc".to_owned()], "only the patient removed");
    let removes: Vec<_> = lk.calls().into_iter().filter(|c| c.method == "RemoveParticipant").collect();
    assert_eq!(removes.len(), 2);
    assert_eq!(removes[1].grant, json!({"roomAdmin": true, "room": name}), "roomAdmin for this room only");
    assert_eq!(removes[1].body, json!({"room": name, "identity": "u-pat"}));
    service.remove_participant(&name, "u-pat").await.expect("already gone is done");
    let wrong = vcare_livekit::RoomService {
        credentials: std::sync::Arc::new(vcare_livekit::Credentials::new(API_KEY, b"another secret")),
        ..service.clone()
    };
    let err = wrong.remove_participant(&name, "u-doc").await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert_eq!(lk.room(&name).unwrap().participants, vec!["u-doc".to_owned()]);
    stack.stop().await;
}

#[tokio::test]
async fn a_clinic_on_openvidu_needs_openvidu_settings_at_cold_start() {
    let stack = TestStack::start().await;
    let mut env = stack.gateway.function("RoomCreateFunction").unwrap().def.environment.clone();
    env.remove("OPENVIDU_URL");
    let err = room_create::function(&vcare_runtime::Env::from_map(env.clone()), &stack.sdk).await.err().unwrap();
    assert!(err.to_string().contains("OPENVIDU_URL"), "{err}");
    env.insert("OPENVIDU_URL".into(), "ftp://nowhere".into());
    let err = room_create::function(&vcare_runtime::Env::from_map(env.clone()), &stack.sdk).await.err().unwrap();
    assert!(err.to_string().contains("OPENVIDU_URL"), "{err}");
    env.insert("OPENVIDU_URL".into(), stack.livekit.url.clone());
    env.remove("OPENVIDU_API_KEY");
    let err = room_create::function(&vcare_runtime::Env::from_map(env.clone()), &stack.sdk).await.err().unwrap();
    assert!(err.to_string().contains("OPENVIDU_API_KEY"), "{err}");
    env.insert("CLINIC_VIDEO_PROVIDERS".into(), "c-x=zoom".into());
    env.insert("OPENVIDU_API_KEY".into(), API_KEY.into());
    let err = room_create::function(&vcare_runtime::Env::from_map(env.clone()), &stack.sdk).await.err().unwrap();
    assert!(err.to_string().contains("CLINIC_VIDEO_PROVIDERS"), "{err}");
    env.remove("CLINIC_VIDEO_PROVIDERS");
    env.insert("VIDEO_PROVIDER_DEFAULT".into(), "zoom".into());
    let err = room_create::function(&vcare_runtime::Env::from_map(env), &stack.sdk).await.err().unwrap();
    assert!(err.to_string().contains("VIDEO_PROVIDER_DEFAULT"), "{err}");
    // A Jitsi clinic may still ask for OpenVidu per room; a request for a
    // provider the deployment lacks is a 422 (the settings are per
    // deployment, the request per room).
    let jitsi_doctor = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let mut body = room_body("apt-ov-ask", Utc::now() + Duration::minutes(5), &[doctor(), patient()]);
    body["provider"] = json!("openvidu");
    let (status, asked) = post(&stack, "/v1/virtual-care/rooms", &jitsi_doctor, body.clone()).await;
    assert_eq!((status, &asked["provider"]), (201, &json!("openvidu")), "{asked}");
    body["provider"] = json!("zoom");
    body["appointmentId"] = json!("apt-ov-zoom");
    assert_eq!(post(&stack, "/v1/virtual-care/rooms", &jitsi_doctor, body).await.0, 400);
    stack.stop().await;
}

#[tokio::test]
async fn provider_status_is_probed_for_clinic_admins_and_services() {
    let stack = TestStack::start().await;
    let admin = stack.token("u-admin", Some(OPENVIDU_CLINIC), &["clinic-admin"]);
    let (status, rows) = get(&stack, "/v1/virtual-care/providers/status", &admin).await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows[0], json!({"provider": "jitsi", "state": "unconfigured"}), "no JitsiHealthUrl: {rows}");
    assert_eq!((&rows[1]["provider"], &rows[1]["state"]), (&json!("openvidu"), &json!("up")), "{rows}");
    assert!(rows[1]["latencyMs"].as_u64().unwrap() < 2_000);
    let service = stack.token("svc", Some(OPENVIDU_CLINIC), &["service"]);
    assert_eq!(get(&stack, "/v1/virtual-care/providers/status", &service).await.0, 200);
    for role in ["doctor", "patient", "nurse"] {
        let t = stack.token("u-x", Some(OPENVIDU_CLINIC), &[role]);
        assert_eq!(get(&stack, "/v1/virtual-care/providers/status", &t).await.0, 403, "{role}");
    }
    assert_eq!(stack.get("/v1/virtual-care/providers/status", None).await.0, 401);

    // Down: Jitsi's health URL answers 503, OpenVidu does not answer at all.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sick = format!("http://{}/about/health", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/about/health", axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "no") }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut env = stack.gateway.function("HealthFunction").unwrap().def.environment.clone();
    env.insert("JITSI_HEALTH_URL".into(), sick);
    env.insert("OPENVIDU_URL".into(), closed);
    let function = health::function(&vcare_runtime::Env::from_map(env), &stack.sdk).await.unwrap();
    // The sample a service's status request is (events/health/).
    let text = std::fs::read_to_string(root().join("events/health/providers-status.json")).unwrap();
    let event: Value = serde_json::from_str(&text).unwrap();
    use vcare_runtime::Function;
    let response = function.invoke(event, Default::default()).await.unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    let rows: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!((&rows[0]["state"], &rows[1]["state"]), (&json!("down"), &json!("down")), "{rows}");
    stack.stop().await;
}
