//! The waiting room of lobby rooms, on both providers, through the local
//! gateway: patients and interpreters check in and get no token until a
//! clinician admits them; clinicians are never held back; Jitsi tokens
//! carry what jitsi-contrib's lobby plugins read; the clinicians are told
//! by SMS through vcare's own notifications, once.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use vcare_tests::comms::{Providers, sms_to};
use vcare_tests::rooms::{doctor, patient, room_body};
use vcare_tests::{JITSI_APP_SECRET, OPENVIDU_CLINIC, TestStack};

async fn call(stack: &TestStack, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = stack.http.request(method.parse().unwrap(), format!("{}{path}", stack.base)).bearer_auth(token);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let (status, _, body) = stack.send(request).await;
    (status, body)
}

fn nurse() -> Value {
    json!({"userId": "u-nurse", "role": "nurse", "displayName": "Nurse Karimi"})
}

fn interpreter() -> Value {
    json!({"userId": "u-int", "role": "interpreter", "displayName": "Interpreter"})
}

/// The claims of a Jitsi token, read by an independent JWT library.
fn jitsi_claims(token: &str) -> Value {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_audience(&["jitsi"]);
    let key = jsonwebtoken::DecodingKey::from_secret(JITSI_APP_SECRET.as_bytes());
    jsonwebtoken::decode::<Value>(token, &key, &v).unwrap().claims
}

#[tokio::test]
async fn patients_wait_until_a_clinician_admits_them_on_both_providers() {
    let stack = TestStack::start().await;
    for (clinic, provider) in [("c-1", "jitsi"), (OPENVIDU_CLINIC, "openvidu")] {
        let as_ = |user: &str, role: &str| stack.token(user, Some(clinic), &[role]);
        let (doc, nurse_t, pat, int) =
            (as_("u-doc", "doctor"), as_("u-nurse", "nurse"), as_("u-pat", "patient"), as_("u-int", "interpreter"));
        let body = room_body(
            &format!("apt-wait-{provider}"),
            Utc::now() + Duration::minutes(5),
            &[doctor(), nurse(), patient(), interpreter()],
        );
        let (status, room) = call(&stack, "POST", "/v1/virtual-care/rooms", &doc, Some(body)).await;
        assert_eq!((status, &room["provider"], &room["lobby"]), (201, &json!(provider), &json!(true)), "{room}");
        let id = room["roomId"].as_str().unwrap().to_owned();
        let path = |tail: &str| format!("/v1/virtual-care/rooms/{id}/{tail}");

        // Clinicians are never held back.
        let (status, token) = call(&stack, "POST", &path("tokens"), &doc, Some(json!({}))).await;
        assert_eq!(status, 201, "{provider}: {token}");
        if provider == "jitsi" {
            let user = &jitsi_claims(token["token"].as_str().unwrap())["context"]["user"];
            assert_eq!((&user["lobby_bypass"], &user["lobby"]), (&json!(true), &json!(false)), "{user}");
        }
        assert_eq!(call(&stack, "POST", &path("check-in"), &nurse_t, None).await.1["status"], "admitted");

        // A patient's token waits for admission.
        let (status, problem) = call(&stack, "POST", &path("tokens"), &pat, Some(json!({}))).await;
        assert_eq!(status, 409, "{provider}: {problem}");
        assert!(problem["type"].as_str().unwrap().ends_with("/waiting"), "{problem}");
        let admit = |user: &str| json!({"userId": user});
        assert_eq!(call(&stack, "POST", &path("admit"), &doc, Some(admit("u-pat"))).await.0, 409, "not waiting yet");
        assert_eq!(call(&stack, "POST", &path("admit"), &doc, Some(admit("u-who"))).await.0, 404, "not listed");
        let stranger = as_("u-other", "patient");
        assert_eq!(call(&stack, "POST", &path("check-in"), &stranger, None).await.0, 404, "not a participant");
        let admin = as_("u-admin", "clinic-admin");
        assert_eq!(call(&stack, "POST", &path("check-in"), &admin, None).await.0, 404, "staff who are not listed");
        let other_clinic = stack.token("u-pat", Some("c-elsewhere"), &["patient"]);
        assert_eq!(call(&stack, "POST", &path("check-in"), &other_clinic, None).await.0, 404);

        let (status, waiting) = call(&stack, "POST", &path("check-in"), &pat, None).await;
        assert_eq!(
            (status, &waiting["status"], &waiting["clinicianNotified"]),
            (200, &json!("waiting"), &json!(false))
        );
        let (_, again) = call(&stack, "POST", &path("check-in"), &pat, None).await;
        assert_eq!(again["since"], waiting["since"], "a repeat check-in is the same wait");
        assert_eq!(vcare_tests::rooms::room_events(&stack, &id, "virtual_care.patient.waiting").await.len(), 1);

        let (status, list) = call(&stack, "GET", &path("waiting"), &doc, None).await;
        assert_eq!(status, 200);
        assert_eq!(list, json!([{"userId": "u-pat", "displayName": "Zahra", "since": waiting["since"]}]));
        assert_eq!(call(&stack, "GET", &path("waiting"), &pat, None).await.0, 403, "patients do not see who waits");
        assert_eq!(call(&stack, "GET", &path("waiting"), &int, None).await.0, 403);
        assert_eq!(call(&stack, "POST", &path("admit"), &pat, Some(admit("u-pat"))).await.0, 403, "nor admit");
        assert_eq!(call(&stack, "POST", &path("admit"), &doc, Some(json!({"user": "u-pat"}))).await.0, 400);

        let (status, admitted) = call(&stack, "POST", &path("admit"), &nurse_t, Some(admit("u-pat"))).await;
        assert_eq!((status, &admitted["status"]), (200, &json!("admitted")), "{admitted}");
        let (status, again) = call(&stack, "POST", &path("admit"), &doc, Some(admit("u-pat"))).await;
        assert_eq!((status, &again["admittedAt"]), (200, &admitted["admittedAt"]), "a retried admit is the same");
        let admissions = vcare_tests::rooms::room_events(&stack, &id, "virtual_care.patient.admitted").await;
        assert_eq!(admissions.len(), 1);
        assert_eq!(
            (&admissions[0]["data"]["admittedBy"], &admissions[0]["data"]["provider"]),
            (&json!("u-nurse"), &json!(provider))
        );
        assert!(call(&stack, "GET", &path("waiting"), &doc, None).await.1.as_array().unwrap().is_empty());
        let (_, seen) = call(&stack, "GET", &format!("/v1/virtual-care/rooms/{id}"), &pat, None).await;
        assert!(seen.get("admitted").is_none() && seen.get("waiting").is_none(), "the room's view: {seen}");

        let (status, token) = call(&stack, "POST", &path("tokens"), &pat, Some(json!({}))).await;
        assert_eq!(status, 201, "admitted: {token}");
        if provider == "jitsi" {
            let user = &jitsi_claims(token["token"].as_str().unwrap())["context"]["user"];
            assert_eq!(user["lobby_bypass"], true, "admitted by vcare: past Prosody's lobby too");
        }
        assert_eq!(call(&stack, "POST", &path("check-in"), &pat, None).await.1["status"], "admitted");
        assert_eq!(
            call(&stack, "POST", &path("tokens"), &int, Some(json!({}))).await.0,
            409,
            "each waits for themself"
        );

        // A room without a lobby holds nobody back.
        let mut open =
            room_body(&format!("apt-open-{provider}"), Utc::now() + Duration::minutes(5), &[doctor(), patient()]);
        open["lobby"] = json!(false);
        let (_, open) = call(&stack, "POST", "/v1/virtual-care/rooms", &doc, Some(open)).await;
        let open_path = format!("/v1/virtual-care/rooms/{}/tokens", open["roomId"].as_str().unwrap());
        assert_eq!(call(&stack, "POST", &open_path, &pat, Some(json!({}))).await.0, 201);
    }
    // Check-in only inside the join window.
    let doc = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let later = room_body("apt-wait-later", Utc::now() + Duration::hours(3), &[doctor(), patient()]);
    let (_, later) = call(&stack, "POST", "/v1/virtual-care/rooms", &doc, Some(later)).await;
    let path = format!("/v1/virtual-care/rooms/{}/check-in", later["roomId"].as_str().unwrap());
    let (status, problem) = call(&stack, "POST", &path, &stack.token("u-pat", Some("c-1"), &["patient"]), None).await;
    assert_eq!(status, 409);
    assert!(problem["detail"].as_str().unwrap().contains("opens for joining"), "{problem}");
    stack.stop().await;
}

const DOCTOR_PHONE: &str = "+93700000101";

#[tokio::test]
async fn the_rooms_clinicians_are_told_once_by_sms_that_someone_waits() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let start = Utc::now() + Duration::minutes(5);
    let event = json!({
        "specversion": "1.0", "id": "evt-wait-created", "source": "/scheduling/appointments",
        "type": "appointment.created", "time": Utc::now().to_rfc3339(), "subject": "apt-told", "clinicid": "c1",
        "data": {
            "appointmentId": "apt-told", "kind": "video",
            "scheduledStart": start.to_rfc3339(), "scheduledEnd": (start + Duration::minutes(30)).to_rfc3339(),
            "participants": [
                {"userId": "u-doc", "role": "doctor", "displayName": "Dr. Amini",
                 "contact": {"phone": DOCTOR_PHONE, "locale": "en", "timezone": "Asia/Kabul"}},
                {"userId": "u-pat", "role": "patient", "displayName": "Zahra",
                 "contact": {"phone": "+93701112299", "locale": "fa-AF", "timezone": "Asia/Kabul"}},
            ],
        },
    });
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let queue = stack.gateway.resource("AppointmentEventsQueue").unwrap().reference.clone();
    sqs.send_message().queue_url(queue).message_body(event.to_string()).send().await.unwrap();
    let env = stack.gateway.function("AppointmentEventsFunction").unwrap().def.environment.clone();
    let care = vcare_care::Rooms::from_env(&vcare_runtime::Env::from_map(env), &stack.sdk).unwrap();
    let room = vcare_tests::eventually(StdDuration::from_secs(30), "the appointment's room", || async {
        care.store.by_appointment("c1", "apt-told").await.unwrap().map(|(r, _)| r.room_id)
    })
    .await;
    let pat = stack.token("u-pat", Some("c1"), &["patient"]);
    let path = format!("/v1/virtual-care/rooms/{room}/check-in");
    let (status, waiting) = call(&stack, "POST", &path, &pat, None).await;
    assert_eq!((status, &waiting["clinicianNotified"]), (200, &json!(true)), "{waiting}");
    let texts = vcare_tests::eventually(StdDuration::from_secs(30), "the doctor's SMS", || async {
        let t = sms_to(&p.gateway.requests(), DOCTOR_PHONE);
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert!(texts[0].contains("waiting room"), "{texts:?}");
    assert!(!texts[0].contains("Zahra"), "no name in the message: {}", texts[0]);
    assert_eq!(call(&stack, "POST", &path, &pat, None).await.1["clinicianNotified"], true);
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    assert_eq!(sms_to(&p.gateway.requests(), DOCTOR_PHONE).len(), 1, "told once");
    assert!(sms_to(&p.gateway.requests(), "+93701112299").is_empty(), "the patient is not told");
    stack.stop().await;
}

/// The room's dial-in PIN as its doctor's token answer says it.
async fn stored_pin(stack: &TestStack, id: &str) -> String {
    let doc = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let (status, token) =
        call(stack, "POST", &format!("/v1/virtual-care/rooms/{id}/tokens"), &doc, Some(json!({}))).await;
    assert_eq!(status, 201, "{token}");
    token["dialIn"]["pin"].as_str().expect("a PIN").to_owned()
}

/// Opens `/j/<code>` on the stack without following redirects.
async fn open_link(stack: &TestStack, code: &str, accept_language: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r =
        client.get(format!("{}/j/{code}", stack.base)).header("accept-language", accept_language).send().await.unwrap();
    (r.status().as_u16(), r.headers().clone(), r.text().await.unwrap())
}

// Multi-threaded: the gateway serves the browser while the test waits on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_page_checks_in_and_moves_on_once_admitted_in_chromium() {
    use std::io::BufRead;
    // The clinic has dial-in: the page shows its numbers and the room's PIN.
    let stack =
        TestStack::start_with(vcare_tests::root().join("infra/template.yaml"), &vcare_local::Registry::vcare(), |c| {
            c.parameters.insert("ClinicDialInNumbers".into(), "c-1=AF:+93201234567,+93201234568".into());
        })
        .await;
    let doc = stack.token("u-doc", Some("c-1"), &["doctor"]);
    let body = room_body("apt-page", Utc::now() + Duration::minutes(5), &[doctor(), patient()]);
    let (_, room) = call(&stack, "POST", "/v1/virtual-care/rooms", &doc, Some(body)).await;
    let id = room["roomId"].as_str().unwrap().to_owned();
    let (status, link) =
        call(&stack, "POST", &format!("/v1/virtual-care/rooms/{id}/links"), &doc, Some(json!({"userId": "u-pat"})))
            .await;
    assert_eq!(status, 201, "{link}");
    let code = link["url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();

    // The page as served: the browser's language, its own script only.
    let (status, headers, html) = open_link(&stack, &code, "ps-AF,ps;q=0.9").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"<html lang="ps" dir="rtl">"#));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(!html.contains("Zahra") && !html.contains("u-pat"), "the page names no one");
    let (_, _, english) = open_link(&stack, &code, "de-DE,en;q=0.5").await;
    assert!(english.contains(r#"dir="ltr""#));
    // Its calls: a dead link is 404.
    let dead = stack.http.get(format!("{}/j/AAAAAAAAAAAA/status", stack.base)).send().await.unwrap();
    assert_eq!(dead.status(), 404);
    let dead = stack.http.post(format!("{}/j/AAAAAAAAAAAA/check-in", stack.base)).send().await.unwrap();
    assert_eq!(dead.status(), 404);
    assert_eq!(dead.headers()["content-type"], "application/problem+json");

    // In Chromium, in Persian.
    let shots = vcare_tests::root().join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("waiting-room-fa.png");
    let mut child = std::process::Command::new(vcare_tests::root().join(".venv/bin/python"))
        .arg(vcare_tests::root().join("tests/python/waiting_page.py"))
        .args([format!("{}/j/{code}", stack.base), shot.display().to_string(), "fa".into()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the project's Python");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let complaints = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut complaints = Some(complaints);
    let mut line = |what: &str| match tokio::task::block_in_place(|| rx.recv_timeout(StdDuration::from_secs(60))) {
        Ok(line) => line,
        Err(_) => {
            let said = complaints.take().map(|c| c.join().unwrap_or_default()).unwrap_or_default();
            panic!("the page never showed {what}: {said}")
        }
    };
    let seen: Value = serde_json::from_str(&line("the patient waiting")).unwrap();
    assert_eq!(
        (&seen["lang"], &seen["dir"], &seen["direction"]),
        (&json!("fa"), &json!("rtl"), &json!("rtl")),
        "{seen}"
    );
    assert_eq!(seen["title"], "اتاق انتظار");
    assert_eq!(seen["status"], "شما در اتاق انتظار هستید.");
    assert!(seen["note"].as_str().unwrap().contains("کلینیک"), "no clinician could be told: {seen}");
    assert!(
        seen["borderRight"].as_f64().unwrap() > 0.0 && seen["borderLeft"] == 0.0,
        "the heading's mark on the right: {seen}"
    );
    assert_eq!(seen["overflow"], false, "{seen}");
    let pin = stored_pin(&stack, &id).await;
    let spaced = format!("{} {} {}", &pin[..3], &pin[3..6], &pin[6..]);
    let phone = seen["phone"].as_str().expect("the dial-in is shown");
    assert!(phone.starts_with("اینترنت ندارید؟"), "{phone}");
    assert!(phone.contains("+93201234567\n+93201234568") && phone.contains(&spaced), "{phone} has {spaced}");
    assert_eq!(seen["phoneNumbersLtr"], true, "numbers left to right in a right-to-left page");
    assert!(std::fs::metadata(&shot).unwrap().len() > 5_000, "a screenshot was taken");

    // The page checked the patient in; a clinician lets them in.
    let (_, list) = call(&stack, "GET", &format!("/v1/virtual-care/rooms/{id}/waiting"), &doc, None).await;
    assert_eq!(list[0]["userId"], "u-pat", "{list}");
    let (status, _) =
        call(&stack, "POST", &format!("/v1/virtual-care/rooms/{id}/admit"), &doc, Some(json!({"userId": "u-pat"})))
            .await;
    assert_eq!(status, 200);
    let moved: Value = serde_json::from_str(&line("the move to the consultation")).unwrap();
    let target = moved["movedTo"].as_str().unwrap();
    assert!(
        target.starts_with(&format!("https://meet.vcare.local/{}?jwt=", room["jitsiRoom"].as_str().unwrap())),
        "{target}"
    );
    let done = child.wait().unwrap();
    assert!(done.success(), "the browser's script failed");
    // Once admitted, the link goes straight to the consultation.
    let (status, headers, _) = open_link(&stack, &code, "fa").await;
    assert_eq!(status, 302);
    assert!(headers["location"].to_str().unwrap().contains("jwt="));
    stack.stop().await;
}
