//! Events in (issue 6): appointment events become rooms and cancellation
//! notices; the reminder scheduler sends each window once with a join
//! link; and a consultation's events come out of the relay in order.

use std::time::Duration;

use chrono::{DurationRound, Utc};
use serde_json::{Value, json};
use vcare_tests::comms::{Providers, sms_to};
use vcare_tests::rooms::{self, create_room, room_body};
use vcare_tests::{JITSI_APP_SECRET, JITSI_WEBHOOK_SECRET, TestStack, domain_events};

const PATIENT_PHONE: &str = "+93701112233";

fn appointment_created(apt: &str, start: chrono::DateTime<Utc>) -> Value {
    json!({
        "specversion": "1.0", "id": format!("evt-{apt}-created"), "source": "/scheduling/appointments",
        "type": "appointment.created", "time": Utc::now().to_rfc3339(), "subject": apt, "clinicid": "c1",
        "data": {
            "appointmentId": apt, "kind": "video",
            "scheduledStart": start.to_rfc3339(), "scheduledEnd": (start + chrono::Duration::minutes(30)).to_rfc3339(),
            "participants": [
                {"userId": "u-doc", "role": "doctor", "displayName": "Dr. Amini",
                 "contact": {"email": "dr.amini@clinic.example", "locale": "en", "timezone": "Asia/Kabul"}},
                {"userId": "u-pat", "role": "patient", "displayName": "Zahra",
                 "contact": {"phone": PATIENT_PHONE, "locale": "fa-AF", "timezone": "Asia/Kabul"}},
                {"userId": "u-int", "role": "interpreter", "displayName": "Interpreter"},
            ],
        },
    })
}

fn appointment_cancelled(apt: &str) -> Value {
    json!({
        "specversion": "1.0", "id": format!("evt-{apt}-cancelled"), "source": "/scheduling/appointments",
        "type": "appointment.cancelled", "time": Utc::now().to_rfc3339(), "subject": apt, "clinicid": "c1",
        "data": {"appointmentId": apt, "reason": "patient request"},
    })
}

async fn put_on_queue(stack: &TestStack, body: &str) {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = stack.gateway.resource("AppointmentEventsQueue").unwrap().reference.clone();
    sqs.send_message().queue_url(url).message_body(body).send().await.unwrap();
}

fn care(stack: &TestStack) -> vcare_care::Rooms {
    let env = stack.gateway.function("AppointmentEventsFunction").unwrap().def.environment.clone();
    vcare_care::Rooms::from_env(&vcare_runtime::Env::from_map(env), &stack.sdk).unwrap()
}

async fn room_of(stack: &TestStack, apt: &str) -> vcare_domain::room::Room {
    let care = care(stack);
    vcare_tests::eventually(Duration::from_secs(30), "the appointment's room", || async {
        care.store.by_appointment("c1", apt).await.unwrap().map(|(r, _)| r)
    })
    .await
}

async fn accepted_notifications(stack: &TestStack) -> usize {
    let db = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let got = db
        .scan()
        .table_name(table)
        .filter_expression("eventType = :t")
        .expression_attribute_values(
            ":t",
            aws_sdk_dynamodb::types::AttributeValue::S("communication.notification.accepted".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    got.items.unwrap_or_default().len()
}

#[tokio::test]
async fn appointment_events_make_the_room_and_a_cancellation_tells_each_participant_once() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let start = Utc::now() + chrono::Duration::days(2);
    let created = appointment_created("apt-in-1", start).to_string();
    put_on_queue(&stack, &created).await;
    put_on_queue(&stack, &created).await;
    let room = room_of(&stack, "apt-in-1").await;
    assert_eq!(room.participants.len(), 3);

    // The same appointment through the API: the same room.
    let doctor = stack.token("u-doc", Some("c1"), &["doctor"]);
    let interpreter = json!({"userId": "u-int", "role": "interpreter", "displayName": "Interpreter"});
    let body = room_body("apt-in-1", start, &[rooms::doctor(), rooms::patient(), interpreter]);
    let (status, same) = create_room(&stack, &doctor, &body).await;
    assert_eq!((status, same["roomId"].as_str()), (200, Some(room.room_id.as_str())), "{same}");

    // Contacts are sealed: the raw items hold no phone or e-mail.
    let raw = format!("{:?}", care(&stack).store.contacts(&room).await.unwrap());
    assert!(!raw.contains("701112233") && !raw.contains("amini@"), "{raw}");

    // Cancelled (twice): the room is cancelled, each participant with a contact told once.
    let cancelled = appointment_cancelled("apt-in-1").to_string();
    put_on_queue(&stack, &cancelled).await;
    put_on_queue(&stack, &cancelled).await;
    vcare_tests::eventually(Duration::from_secs(30), "the patient's SMS", || async {
        (!sms_to(&p.gateway.requests(), PATIENT_PHONE).is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let texts = sms_to(&p.gateway.requests(), PATIENT_PHONE);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("لغو"), "in the patient's language: {}", texts[0]);
    assert_eq!(
        accepted_notifications(&stack).await,
        2,
        "the doctor (e-mail) and the patient (SMS); not the interpreter"
    );
    let room = room_of(&stack, "apt-in-1").await;
    assert_eq!(room.status, vcare_domain::room::RoomStatus::Cancelled);

    // An unknown type is acknowledged; a malformed one ends in the DLQ alone.
    put_on_queue(
        &stack,
        &json!({"specversion": "1.0", "id": "x", "type": "appointment.rescheduled", "clinicid": "c1", "data": {}})
            .to_string(),
    )
    .await;
    put_on_queue(&stack, "{not json").await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let dlq = stack.gateway.resource("AppointmentEventsDLQ").unwrap().reference.clone();
    let dead = vcare_tests::eventually(Duration::from_secs(60), "the malformed event in the DLQ", || async {
        let got = sqs.receive_message().queue_url(&dlq).wait_time_seconds(1).send().await.unwrap();
        got.messages.filter(|m| !m.is_empty())
    })
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some("{not json"));
    stack.stop().await;
}

/// The JWT in a join link, checked as Prosody would (HS256, the app secret).
/// Opens the `/j/<code>` link in an SMS text on the stack, without
/// following the redirect: the status and the `Location`.
async fn open_link(stack: &vcare_tests::TestStack, text: &str) -> (u16, String) {
    let code = text.split("/j/").nth(1).expect("a join link").chars().take(12).collect::<String>();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client.get(format!("{}/j/{code}", stack.base)).send().await.unwrap();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    (r.status().as_u16(), location)
}

fn join_claims(text: &str) -> Value {
    let jwt = text.split("?jwt=").nth(1).expect("a join link with a token").split_whitespace().next().unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_audience(&["jitsi"]);
    v.validate_nbf = false;
    jsonwebtoken::decode::<Value>(jwt, &jsonwebtoken::DecodingKey::from_secret(JITSI_APP_SECRET.as_bytes()), &v)
        .expect("a valid join token")
        .claims
}

/// The end-to-end story: appointment → room (with its reminders
/// in the due index) → the 10-minute reminder with a join link, once
/// however often the scheduler runs, a missed minute caught up → the
/// participants join and leave → the room's events leave the relay in
/// order with stable ids.
#[tokio::test]
async fn reminders_go_once_per_window_with_a_join_link_and_the_consultation_events_follow_in_order() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let env = stack.gateway.function("ReminderSchedulerFunction").unwrap().def.environment.clone();
    let scheduler = reminder_scheduler::scheduler(&vcare_runtime::Env::from_map(env), &stack.sdk).await.unwrap();
    let now = Utc::now();
    let minute = now.duration_trunc(chrono::Duration::minutes(1)).unwrap();
    // Starts in 10 minutes (and 20 s): its 10-minute reminder is due this minute.
    let start = minute + chrono::Duration::minutes(10) + chrono::Duration::seconds(20);
    put_on_queue(&stack, &appointment_created("apt-remind", start).to_string()).await;
    let room = room_of(&stack, "apt-remind").await;
    // Another starting 1 h 3 min ahead: due in three minutes, for the catch-up.
    let later = minute + chrono::Duration::minutes(63) + chrono::Duration::seconds(5);
    put_on_queue(&stack, &appointment_created("apt-later", later).to_string()).await;
    let later_room = room_of(&stack, "apt-later").await;

    // Before it is due, a run leaves it; then two runs at once
    // (overlapping invocations), then one more afterwards (a retry): one
    // reminder per participant.
    let due = start - chrono::Duration::minutes(10);
    let early = scheduler.run(due - chrono::Duration::seconds(1)).await.unwrap();
    assert_eq!(early.reminders, 0, "{early:?}");
    let t = due + chrono::Duration::seconds(1);
    let (first, again) = tokio::join!(scheduler.run(t), scheduler.run(t));
    let (first, again) = (first.unwrap(), again.unwrap());
    assert!(first.entries >= 1 && again.entries >= 1, "both read it: {first:?} {again:?}");
    assert!(first.reminders + again.reminders >= 2, "the doctor and the patient: {first:?} {again:?}");
    let retry = scheduler.run(t).await.unwrap();
    assert_eq!((retry.entries, retry.reminders), (0, 0), "the entry is done: {retry:?}");
    vcare_tests::eventually(Duration::from_secs(30), "the patient's reminder", || async {
        (!sms_to(&p.gateway.requests(), PATIENT_PHONE).is_empty()).then_some(())
    })
    .await;
    // Two minutes after it was due (runs missed): the later room's 1-hour reminder.
    let caught_up = scheduler.run(later - chrono::Duration::minutes(58)).await.unwrap();
    assert_eq!(caught_up.reminders, 2, "{caught_up:?}");
    vcare_tests::eventually(Duration::from_secs(30), "both reminders sent", || async {
        (sms_to(&p.gateway.requests(), PATIENT_PHONE).len() >= 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let texts = sms_to(&p.gateway.requests(), PATIENT_PHONE);
    assert_eq!(texts.len(), 2, "one per room and window, never twice: {texts:?}");
    for (text, r) in texts.iter().zip([&room, &later_room]) {
        assert!(text.contains("مشاوره تصویری"), "in Persian: {text}");
        // A short link, no token in the SMS; it offers the replies and says how to stop.
        assert!(text.contains(&format!("{}/j/", vcare_tests::JOIN_LINK_BASE)) && !text.contains("jwt"), "{text}");
        assert!(text.contains("تأیید C") && text.contains("STOP"), "{text}");
        let (status, _) = open_link(&stack, text).await;
        if r.room_id == room.room_id {
            // In the join window, a lobby room: the waiting page until a
            // clinician admits the patient; then the link mints their token.
            assert_eq!(status, 200, "the waiting page: {text}");
            let base = format!("{}/v1/virtual-care/rooms/{}", stack.base, r.room_id);
            let patient = stack.token("u-pat", Some("c1"), &["patient"]);
            let doctor = stack.token("u-doc", Some("c1"), &["doctor"]);
            let (s, _, _) = stack.send(stack.http.post(format!("{base}/check-in")).bearer_auth(&patient)).await;
            assert_eq!(s, 200);
            let admit = stack.http.post(format!("{base}/admit")).bearer_auth(&doctor).json(&json!({"userId": "u-pat"}));
            assert_eq!(stack.send(admit).await.0, 200);
            let (status, location) = open_link(&stack, text).await;
            assert_eq!(status, 302, "{text}");
            let claims = join_claims(&location);
            assert_eq!(
                (claims["room"].as_str(), claims["context"]["user"]["id"].as_str()),
                (Some(r.jitsi_room.as_str()), Some("u-pat"))
            );
            assert_eq!(claims["context"]["user"]["moderator"], "false", "as Prosody reads it");
        } else {
            assert_eq!(status, 200, "before its window the link says when it opens");
        }
    }

    // The consultation happens (Prosody's event_sync), and its events leave in order.
    let name = room.jitsi_room.clone();
    let t0 = Utc::now().timestamp();
    for (what, payload) in [
        ("room/created", json!({"room_name": name, "created_at": t0})),
        ("occupant/joined", json!({"room_name": name, "occupant": {"id": "u-doc", "joined_at": t0 + 5}})),
        ("occupant/joined", json!({"room_name": name, "occupant": {"id": "u-pat", "joined_at": t0 + 9}})),
        ("room/destroyed", json!({"room_name": name, "created_at": t0, "destroyed_at": t0 + 900})),
    ] {
        let (status, _, out) = stack
            .send(
                stack
                    .http
                    .post(format!("{}/v1/virtual-care/jitsi/events/{what}", stack.base))
                    .header("x-jitsi-shared-secret", JITSI_WEBHOOK_SECRET)
                    .json(&payload),
            )
            .await;
        assert_eq!(status, 200, "{what}: {out}");
    }
    let events = domain_events(&stack, 40, Duration::from_secs(20)).await;
    let of_room: Vec<&Value> = events.iter().filter(|e| e["subject"] == room.room_id.as_str()).collect();
    let kinds: Vec<&str> = of_room.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "virtual_care.room.created",
            "virtual_care.patient.waiting",
            "virtual_care.patient.admitted",
            // The link's token, recorded when it was opened.
            "virtual_care.token.issued",
            "virtual_care.consultation.started",
            "virtual_care.consultation.ended"
        ],
        "{events:?}"
    );
    for e in &events {
        vcare_tests::catalogue::validate(e).unwrap_or_else(|err| panic!("{err}"));
    }
    let ended = of_room[5];
    assert_eq!(ended["data"]["durationSeconds"], 900 - 5);
    // Stable ids: each event is its outbox record's.
    let ids: std::collections::HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "no event twice");
    stack.stop().await;
}

/// A malformed appointment event fails with where it is malformed, never
/// with what it holds (serde's own messages quote the offending value).
#[tokio::test]
async fn a_malformed_appointment_event_names_no_personal_data() {
    let stack =
        TestStack::start_with(vcare_tests::root().join("infra/template.yaml"), &vcare_local::Registry::vcare(), |c| {
            c.event_sources = false
        })
        .await;
    let env = stack.gateway.function("AppointmentEventsFunction").unwrap().def.environment.clone();
    let a = appointment_events::appointments(&vcare_runtime::Env::from_map(env), &stack.sdk).unwrap();
    let mut event = appointment_created("apt-bad", Utc::now() + chrono::Duration::days(1));
    event["data"]["participants"][1]["contact"]["phone"] = json!(93701112233u64);
    let err = a.handle(&event.to_string()).await.unwrap_err().to_string();
    assert!(err.contains("malformed") && !err.contains("93701112233"), "{err}");
    event["data"]["participants"][1]["contact"]["phone"] = json!(PATIENT_PHONE);
    event["data"]["participants"][1]["role"] = json!("zahra@example.org");
    let err = a.handle(&event.to_string()).await.unwrap_err().to_string();
    assert!(!err.contains("zahra"), "{err}");
    let err = a.handle("{\"id\": \"+93701112233\"").await.unwrap_err().to_string();
    assert!(!err.contains("701112233"), "{err}");
    assert!(care(&stack).store.by_appointment("c1", "apt-bad").await.unwrap().is_none(), "nothing written");
    stack.stop().await;
}
