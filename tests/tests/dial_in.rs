//! Dial-in by phone through the local gateway: Jitsi's conference mapper
//! and phone-number list as jitsi-meet and Jigasi call them, the PIN in the
//! token response, PINs that resolve only in the join window, and guessing
//! refused.

use chrono::{Duration, Timelike, Utc};
use serde_json::{Value, json};
use vcare_tests::rooms::{doctor, patient, room_body};
use vcare_tests::{TestStack, root};

const NUMBERS: &str = "c-1=AF:+93201234567,+93201234568|DE:+4930123456";

async fn stack() -> TestStack {
    TestStack::start_with(root().join("infra/template.yaml"), &vcare_local::Registry::vcare(), |c| {
        c.parameters.insert("ClinicDialInNumbers".into(), NUMBERS.into());
    })
    .await
}

async fn post(stack: &TestStack, path: &str, token: &str, body: Value) -> (u16, Value) {
    let (status, _, out) =
        stack.send(stack.http.post(format!("{}{path}", stack.base)).bearer_auth(token).json(&body)).await;
    (status, out)
}

/// A public GET, as Jigasi or the meeting page makes it.
async fn public(stack: &TestStack, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
    let (status, _, out) = stack.send(stack.http.get(format!("{}{path}?{query}", stack.base))).await;
    (status, out)
}

const MAPPER: &str = "/v1/virtual-care/jitsi/conference-mapper";
const NUMBERS_PATH: &str = "/v1/virtual-care/jitsi/phone-numbers";

fn jid(room: &Value) -> String {
    format!("{}@conference.meet.vcare.local", room["jitsiRoom"].as_str().unwrap())
}

async fn room(stack: &TestStack, clinic: &str, appointment: &str, starts_in: Duration) -> Value {
    let doc = stack.token("u-doc", Some(clinic), &["doctor"]);
    let mut body = room_body(appointment, Utc::now() + starts_in, &[doctor(), patient()]);
    body["lobby"] = json!(false);
    let (status, room) = post(stack, "/v1/virtual-care/rooms", &doc, body).await;
    assert_eq!(status, 201, "{room}");
    room
}

/// The PIN as stored (the room's API view does not show it).
async fn stored_pin(stack: &TestStack, room: &Value) -> Option<u64> {
    let env = stack.gateway.function("DialInFunction").unwrap().def.environment.clone();
    let care = vcare_care::Rooms::from_env(&vcare_runtime::Env::from_map(env), &stack.sdk).unwrap();
    let (r, _) =
        care.store.get(room["clinicId"].as_str().unwrap(), room["roomId"].as_str().unwrap()).await.unwrap().unwrap();
    r.dial_in_pin
}

#[tokio::test]
async fn the_mapper_and_numbers_answer_as_jitsi_expects_and_pins_resolve_only_in_the_window() {
    let stack = stack().await;
    let now_room = room(&stack, "c-1", "apt-dial", Duration::minutes(5)).await;
    assert!(now_room.get("dialInPin").is_none(), "the room view does not show the PIN: {now_room}");
    let path = format!("/v1/virtual-care/rooms/{}/tokens", now_room["roomId"].as_str().unwrap());
    let (status, token) = post(&stack, &path, &stack.token("u-pat", Some("c-1"), &["patient"]), json!({})).await;
    assert_eq!(status, 201, "{token}");
    let pin = token["dialIn"]["pin"].as_str().expect("the token response has the PIN").to_owned();
    assert_eq!(pin.len(), 10);
    assert_eq!(token["dialIn"]["numbers"], json!({"AF": ["+93201234567", "+93201234568"], "DE": ["+4930123456"]}));

    // The meeting page asks its conference's PIN; Jigasi the PIN's conference.
    let (status, by_conf) = public(&stack, MAPPER, &[("conference", &jid(&now_room))]).await;
    assert_eq!(status, 200, "{by_conf}");
    assert_eq!(by_conf["id"], json!(pin.parse::<u64>().unwrap()), "a number, as Jitsi reads it");
    assert_eq!(by_conf["conference"], jid(&now_room));
    assert!(by_conf["message"].is_string());
    let (status, by_pin) = public(&stack, MAPPER, &[("id", &pin)]).await;
    assert_eq!((status, &by_pin["conference"]), (200, &json!(jid(&now_room))), "{by_pin}");
    let (status, numbers) = public(&stack, NUMBERS_PATH, &[("conference", &jid(&now_room))]).await;
    assert_eq!(status, 200);
    assert_eq!(numbers["numbersEnabled"], true);
    assert_eq!(numbers["numbers"]["AF"], json!(["+93201234567", "+93201234568"]));

    // Tomorrow's room has its PIN, which resolves only once its window opens.
    let later = room(&stack, "c-1", "apt-dial-later", Duration::days(1)).await;
    let later_pin = stored_pin(&stack, &later).await.expect("a PIN from creation").to_string();
    assert_ne!(later_pin, pin);
    assert_eq!(public(&stack, MAPPER, &[("id", &later_pin)]).await.0, 404, "before the window");
    assert_eq!(public(&stack, MAPPER, &[("conference", &jid(&later))]).await.0, 404);

    // A clinic without numbers: no PIN, no numbers.
    let other = room(&stack, "c-2", "apt-dial-none", Duration::minutes(5)).await;
    assert_eq!(stored_pin(&stack, &other).await, None);
    let path = format!("/v1/virtual-care/rooms/{}/tokens", other["roomId"].as_str().unwrap());
    let (_, token) = post(&stack, &path, &stack.token("u-pat", Some("c-2"), &["patient"]), json!({})).await;
    assert!(token.get("dialIn").is_none(), "{token}");
    let (_, numbers) = public(&stack, NUMBERS_PATH, &[("conference", &jid(&other))]).await;
    assert_eq!((&numbers["numbersEnabled"], &numbers["numbers"]), (&json!(false), &json!({})));

    // Ended: the PIN no longer resolves.
    let end = format!("/v1/virtual-care/rooms/{}/end", now_room["roomId"].as_str().unwrap());
    assert_eq!(post(&stack, &end, &stack.token("u-doc", Some("c-1"), &["doctor"]), json!({})).await.0, 200);
    assert_eq!(public(&stack, MAPPER, &[("id", &pin)]).await.0, 404, "after the end");
    stack.stop().await;
}

#[tokio::test]
async fn malformed_pins_are_400_and_guessing_is_refused_for_the_rest_of_the_minute() {
    let stack = stack().await;
    let room = room(&stack, "c-1", "apt-dial-guess", Duration::minutes(5)).await;
    let pin = stored_pin(&stack, &room).await.unwrap().to_string();
    for bad in ["", "123456789", "12345678901", "0123456789", "12345abcde", "1e9", "-123456789", " 123456789"] {
        let (status, problem) = public(&stack, MAPPER, &[("id", bad)]).await;
        assert_eq!((status, &problem["status"]), (400, &json!(400)), "{bad:?}: {problem}");
    }
    assert_eq!(public(&stack, MAPPER, &[]).await.0, 400, "neither");
    assert_eq!(public(&stack, MAPPER, &[("id", &pin), ("conference", &jid(&room))]).await.0, 400, "both");
    assert_eq!(public(&stack, NUMBERS_PATH, &[]).await.0, 400);
    for unknown in [
        "vc-nobody@conference.meet.vcare.local",
        &format!("{}@conference.elsewhere.org", room["jitsiRoom"].as_str().unwrap()),
        "no-jid",
    ] {
        assert_eq!(public(&stack, MAPPER, &[("conference", unknown)]).await.0, 404, "{unknown}");
    }

    // Guesses within one minute (wait for a fresh one if this one is ending).
    if Utc::now().second() > 40 {
        tokio::time::sleep(std::time::Duration::from_secs(u64::from(61 - Utc::now().second()))).await;
    }
    let guess = |n: u64| {
        let g = 1_000_000_000 + (pin.parse::<u64>().unwrap() + 1 + n) % 9_000_000_000;
        g.to_string()
    };
    // 120 wrong guesses at once from one address: exactly the 30 a minute
    // allows are answered 404, every other one 429 (the check and the count
    // are one conditional write: a check before the count let 112-149 through).
    let guesser = from("127.0.0.2");
    let answers = vcare_tests::join_all((0..120).map(|n| {
        let (guesser, stack, g) = (&guesser, &stack, guess(n));
        async move { lookup(stack, guesser, &g, None).await }
    }))
    .await;
    let not_found = answers.iter().filter(|s| **s == 404).count();
    let refused = answers.iter().filter(|s| **s == 429).count();
    assert_eq!((not_found, refused), (30, 90), "{answers:?}");
    let (status, problem) = public(&stack, MAPPER, &[("id", &guess(200))]).await;
    assert_eq!((status, &problem["status"]), (404, &json!(404)), "another address is not locked out: {problem}");
    assert_eq!(lookup(&stack, &guesser, &pin, None).await, 429, "the right PIN too, until the minute ends");
    // Another caller's address, and Jigasi (by the shared secret, even from the
    // guesser's address), still find the room.
    assert_eq!(lookup(&stack, &from("127.0.0.3"), &pin, None).await, 200);
    assert_eq!(lookup(&stack, &guesser, &pin, Some(vcare_tests::JITSI_WEBHOOK_SECRET)).await, 200);
    assert_eq!(lookup(&stack, &guesser, &pin, Some("not-the-secret")).await, 429, "a wrong secret is the address");
    // The meeting page's own lookup by conference is not a guess.
    assert_eq!(public(&stack, MAPPER, &[("conference", &jid(&room))]).await.0, 200);
    stack.stop().await;
}

/// A client whose requests come from `ip` (any loopback address reaches the gateway).
fn from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap()
}

/// A PIN lookup by `client`, with Jigasi's shared secret if given; the status.
async fn lookup(stack: &TestStack, client: &reqwest::Client, pin: &str, secret: Option<&str>) -> u16 {
    let mut request = client.get(format!("{}{MAPPER}?id={pin}", stack.base));
    if let Some(secret) = secret {
        request = request.header("x-jitsi-shared-secret", secret);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn bad_dial_in_settings_fail_the_cold_start_by_name() {
    let stack = stack().await;
    let base = stack.gateway.function("DialInFunction").unwrap().def.environment.clone();
    for (name, value) in [
        ("CLINIC_DIAL_IN_NUMBERS", "c-1=AF:93709998877"),
        ("CLINIC_DIAL_IN_NUMBERS", "c-1"),
        ("DIAL_IN_MISSES_PER_MINUTE", "0"),
        ("DIAL_IN_MISSES_PER_MINUTE", "many"),
    ] {
        let mut env = base.clone();
        env.insert(name.into(), value.into());
        let err = dial_in::function(&vcare_runtime::Env::from_map(env), &stack.sdk).await.err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains(name), "{name}={value}: {text:?}");
        assert!(!text.contains("93709998877"), "the value is not echoed: {text}");
    }
    stack.stop().await;
}
