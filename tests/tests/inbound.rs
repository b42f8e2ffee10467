//! Inbound SMS (issue 17) through the local gateway: each provider's
//! webhook signed the way that provider signs it (Twilio's documented
//! algorithm, Vonage's signed webhooks, the gateway's timestamped HMAC);
//! STOP, START, HELP and replies carried out, each answer sent through the
//! real dispatch path, each inbound message id handled once.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue as V;
use serde_json::{Value, json};
use vcare_providers::inbound::gateway_inbound_signature;
use vcare_providers::receipts::{VonageSigning, twilio_signature, vonage_signature};
use vcare_tests::TestStack;
use vcare_tests::comms::{
    PHONE, PUBLIC_BASE, Providers, TWILIO_TOKEN, VONAGE_SIGNATURE_SECRET, accept, body, wait_for,
};
use vcare_tests::rooms::{create_room, doctor, patient, room_body};

const WAIT: Duration = Duration::from_secs(30);
const GATEWAY_INBOUND_SECRET: &str = "gw-inbound-secret";
const CLINIC_NUMBER: &str = "+93700000001";

async fn stack(p: &Providers, tune: impl FnOnce(&mut vcare_local::GatewayConfig)) -> TestStack {
    vcare_tests::comms::stack_tuned(p, "gateway,twilio", "sendgrid", |c| {
        c.secrets.insert("SmsGatewayInboundSecretCiphertext".into(), GATEWAY_INBOUND_SECRET.into());
        c.parameters.insert("ClinicNames".into(), "c1=Kabul Family Clinic".into());
        c.parameters.insert("ClinicSmsNumbers".into(), format!("c1={CLINIC_NUMBER}"));
        c.parameters.insert("ClinicKeywords".into(), "c1=fa/stop:لغو,fa/confirm:بله".into());
        tune(c);
    })
    .await
}

/// Posts an inbound SMS as `provider` would: its own fields, its own signature.
async fn inbound(stack: &TestStack, provider: &str, id: &str, from: &str, text: &str) -> u16 {
    let url = format!("{}/v1/communication/inbound/{provider}", stack.base);
    let request = match provider {
        "twilio" => {
            let params: Vec<(String, String)> = [
                ("MessageSid", id),
                ("AccountSid", "AC0123456789"),
                ("From", from),
                ("To", CLINIC_NUMBER),
                ("Body", text),
                ("NumMedia", "0"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
            let public = format!("{PUBLIC_BASE}/v1/communication/inbound/twilio");
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
            stack
                .http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-twilio-signature", twilio_signature(TWILIO_TOKEN, &public, &params))
                .body(body)
        }
        "vonage" => {
            let mut params: Vec<(String, String)> = [
                ("msisdn", from.trim_start_matches('+')),
                ("to", CLINIC_NUMBER.trim_start_matches('+')),
                ("messageId", id),
                ("text", text),
                ("type", "text"),
                ("message-timestamp", "2026-12-01 10:00:00"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
            params.push(("timestamp".into(), chrono::Utc::now().timestamp().to_string()));
            let sig = vonage_signature(VonageSigning::Md5Hash, VONAGE_SIGNATURE_SECRET, &params).unwrap();
            params.push(("sig".into(), sig));
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
            stack.http.post(url).header("content-type", "application/x-www-form-urlencoded").body(body)
        }
        _ => {
            let body = json!({"messageId": id, "from": from, "to": CLINIC_NUMBER, "text": text,
                              "receivedAt": chrono::Utc::now().to_rfc3339()})
            .to_string();
            let ts = chrono::Utc::now().timestamp().to_string();
            stack
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("x-timestamp", &ts)
                .header("x-signature", gateway_inbound_signature(GATEWAY_INBOUND_SECRET, &ts, body.as_bytes()))
                .body(body)
        }
    };
    stack.send(request).await.0
}

/// The texts the SMS gateway was asked to send, in order.
fn gateway_texts(p: &Providers) -> Vec<String> {
    p.gateway.requests().iter().map(|r| r.json()["text"].as_str().unwrap_or_default().to_owned()).collect()
}

async fn texts_reach(p: &Providers, n: usize) -> Vec<String> {
    vcare_tests::eventually(WAIT, &format!("{n} SMS at the gateway"), || async {
        let t = gateway_texts(p);
        (t.len() >= n).then_some(t)
    })
    .await
}

/// Outbox events of one type (each checked against the catalogue).
async fn events_of(stack: &TestStack, kind: &str) -> Vec<Value> {
    let db = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let page = db
        .scan()
        .table_name(&table)
        .filter_expression("kind = :k AND eventType = :t")
        .expression_attribute_values(":k", V::S("outbox".into()))
        .expression_attribute_values(":t", V::S(kind.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    page.items
        .unwrap_or_default()
        .iter()
        .map(|i| {
            let e: Value = serde_json::from_str(i["event"].as_s().unwrap()).unwrap();
            vcare_tests::catalogue::validate(&e).unwrap_or_else(|e| panic!("{e}"));
            e
        })
        .collect()
}

#[tokio::test]
async fn stop_by_each_provider_stops_the_next_sms_and_its_failover_and_start_resumes() {
    let p = Providers::start().await;
    let stack = stack(&p, |_| {}).await;
    let id = accept(&stack, &body(&["sms"], "high"), "k-first").await;
    wait_for(&stack, &id, "sent", WAIT).await;
    let mut sent = 1;
    for provider in ["twilio", "vonage", "gateway"] {
        assert_eq!(inbound(&stack, provider, &format!("{provider}-stop"), PHONE, " Stop ").await, 204, "{provider}");
        sent += 1;
        let texts = texts_reach(&p, sent).await;
        let answer = texts.last().unwrap();
        assert!(answer.contains("Kabul Family Clinic") && answer.contains("START"), "{provider}: {answer}");
        // The same message again: 204, nothing new.
        assert_eq!(inbound(&stack, provider, &format!("{provider}-stop"), PHONE, "STOP").await, 204);

        // The next SMS reaches no provider: not the gateway, not its failover.
        let twilio_before = p.twilio.requests().len();
        let id = accept(&stack, &body(&["sms", "email"], "high"), &format!("k-after-{provider}")).await;
        let n = wait_for(&stack, &id, "sent", WAIT).await;
        assert_eq!(n["attempts"][0]["error"], "suppressed", "{n}");
        assert_eq!(n["channel"], "email");
        assert_eq!(gateway_texts(&p).len(), sent, "{provider}: no SMS after STOP");
        assert_eq!(p.twilio.requests().len(), twilio_before);

        assert_eq!(inbound(&stack, provider, &format!("{provider}-start"), PHONE, "start").await, 204);
        sent += 1;
        let texts = texts_reach(&p, sent).await;
        assert!(texts.last().unwrap().contains("STOP"), "the START answer says how to stop: {texts:?}");
        let id = accept(&stack, &body(&["sms"], "high"), &format!("k-resumed-{provider}")).await;
        wait_for(&stack, &id, "sent", WAIT).await;
        sent += 1;
        assert_eq!(texts_reach(&p, sent).await.len(), sent);
        // The STOP posted again after the START: still handled once, the number stays lifted.
        assert_eq!(inbound(&stack, provider, &format!("{provider}-stop"), PHONE, "STOP").await, 204);
    }
    // HELP answers with the clinic's name; a clinic's own word (fa) stops, answered in Persian.
    assert_eq!(inbound(&stack, "gateway", "g-help", PHONE, "HELP").await, 204);
    sent += 1;
    assert!(texts_reach(&p, sent).await.last().unwrap().contains("Kabul Family Clinic"));
    assert_eq!(inbound(&stack, "gateway", "g-fa-stop", PHONE, "لغو").await, 204);
    sent += 1;
    let answer = texts_reach(&p, sent).await.last().unwrap().clone();
    assert!(answer.contains("دیگر پیامکی"), "{answer}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(gateway_texts(&p).len(), sent, "every repeat was a no-op");
    stack.stop().await;
}

#[tokio::test]
async fn bad_inbound_posts_change_nothing() {
    let p = Providers::start().await;
    let stack = stack(&p, |_| {}).await;
    let id = accept(&stack, &body(&["sms"], "high"), "k-first").await;
    wait_for(&stack, &id, "sent", WAIT).await;
    let url = format!("{}/v1/communication/inbound/gateway", stack.base);
    let good = json!({"messageId": "g-1", "from": PHONE, "to": CLINIC_NUMBER, "text": "STOP"}).to_string();
    let now = chrono::Utc::now().timestamp();
    let signed = |ts: i64, body: &str| {
        let ts = ts.to_string();
        let sig = gateway_inbound_signature(GATEWAY_INBOUND_SECRET, &ts, body.as_bytes());
        stack
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-timestamp", ts)
            .header("x-signature", sig)
    };
    // Unsigned, signed with another secret, replayed from 10 minutes ago, a moved timestamp.
    assert_eq!(stack.send(stack.http.post(&url).body(good.clone())).await.0, 401);
    let ts = now.to_string();
    let wrong = gateway_inbound_signature("another", &ts, good.as_bytes());
    let forged = stack.http.post(&url).header("x-timestamp", &ts).header("x-signature", wrong).body(good.clone());
    assert_eq!(stack.send(forged).await.0, 401);
    assert_eq!(stack.send(signed(now - 600, &good).body(good.clone())).await.0, 401);
    let moved = signed(now, &good).header("x-timestamp", (now + 1).to_string());
    assert_eq!(stack.send(moved.body(good.clone())).await.0, 401);
    // Any integer as the time, signed as the gateway would: too far off, never an overflow (a 500).
    for extreme in [i64::MIN, i64::MIN + 1, -1, i64::MAX] {
        assert_eq!(stack.send(signed(extreme, &good).body(good.clone())).await.0, 401, "{extreme}");
    }
    // A Twilio post whose signature is for another URL; a Vonage post without sig.
    let twilio = stack
        .http
        .post(format!("{}/v1/communication/inbound/twilio", stack.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", twilio_signature(TWILIO_TOKEN, "https://elsewhere.example/x", &Vec::new()))
        .body("MessageSid=SM1&From=%2B93701234567&Body=STOP");
    assert_eq!(stack.send(twilio).await.0, 401);
    let vonage = stack
        .http
        .post(format!("{}/v1/communication/inbound/vonage", stack.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("msisdn=93701234567&messageId=v1&text=STOP");
    assert_eq!(stack.send(vonage).await.0, 401);
    let vonage = stack
        .http
        .post(format!("{}/v1/communication/inbound/vonage", stack.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("msisdn=93701234567&messageId=v2&text=STOP&timestamp=-9223372036854775808&sig=00");
    assert_eq!(stack.send(vonage).await.0, 401);
    // Signed but not a message; oversized; an unknown provider.
    let junk = json!({"hello": "world"}).to_string();
    assert_eq!(stack.send(signed(now, &junk).body(junk.clone())).await.0, 400);
    let huge = json!({"messageId": "g-2", "from": PHONE, "text": "x".repeat(20_000)}).to_string();
    assert_eq!(stack.send(signed(now, &huge).body(huge.clone())).await.0, 413);
    let other = format!("{}/v1/communication/inbound/carrier-pigeon", stack.base);
    assert_eq!(stack.send(stack.http.post(other).body("x")).await.0, 404);
    // None of it suppressed the number; nothing was answered.
    let id = accept(&stack, &body(&["sms"], "high"), "k-after").await;
    wait_for(&stack, &id, "sent", WAIT).await;
    assert_eq!(gateway_texts(&p).len(), 2);
    // A reply word or text from a number vcare never wrote to: a documented no-op.
    assert_eq!(inbound(&stack, "gateway", "g-stranger", "+93709999999", "C").await, 204);
    assert_eq!(inbound(&stack, "gateway", "g-stranger-2", "+93709999999", "hello?").await, 204);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(gateway_texts(&p).len(), 2);
    assert!(events_of(&stack, "communication.reply.received").await.is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn a_reply_to_a_reminder_emits_its_event_once_and_a_closed_room_is_answered_so() {
    let p = Providers::start().await;
    let stack = stack(&p, |_| {}).await;
    let dr = stack.token("u-doc", Some("c1"), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::hours(2);
    let (status, room) = create_room(&stack, &dr, &room_body("apt-reply", start, &[doctor(), patient()])).await;
    assert_eq!(status, 201, "{room}");
    let room_id = room["roomId"].as_str().unwrap().to_owned();
    let mut b = body(&["sms"], "high");
    b["replies"] = json!(["confirm", "reschedule", "cancel"]);
    b["context"] = json!({"appointmentId": "apt-reply", "roomId": room_id});
    let id = accept(&stack, &b, "k-reminder").await;
    wait_for(&stack, &id, "sent", WAIT).await;
    // A newer message without replies does not take the reply's place.
    let id2 = accept(&stack, &body(&["sms"], "high"), "k-plain").await;
    wait_for(&stack, &id2, "sent", WAIT).await;

    for _ in 0..3 {
        assert_eq!(inbound(&stack, "twilio", "SM-reply-1", PHONE, "c").await, 204);
    }
    let texts = texts_reach(&p, 3).await;
    assert!(texts[2].contains("confirmed") && texts[2].contains("Kabul Family Clinic"), "{texts:?}");
    let confirmed = events_of(&stack, "communication.appointment.confirmed").await;
    assert_eq!(confirmed.len(), 1, "once, though posted three times: {confirmed:?}");
    let data = &confirmed[0]["data"];
    assert_eq!((data["appointmentId"].as_str(), data["roomId"].as_str()), (Some("apt-reply"), Some(room_id.as_str())));
    assert_eq!((data["userId"].as_str(), data["notificationId"].as_str()), (Some("u-pat"), Some(id.as_str())));
    assert!(!confirmed[0].to_string().contains(PHONE), "ids only");

    // The clinic's own word in Persian is a reply too, answered in Persian.
    assert_eq!(inbound(&stack, "gateway", "g-reply-fa", PHONE, "بله").await, 204);
    let texts = texts_reach(&p, 4).await;
    assert!(texts[3].contains("تأیید"), "{texts:?}");
    assert_eq!(events_of(&stack, "communication.appointment.confirmed").await.len(), 2);

    // Free text: kept sealed, announced by ids only, not answered.
    assert_eq!(inbound(&stack, "gateway", "g-text", PHONE, "Can I bring my son?").await, 204);
    let received = vcare_tests::eventually(WAIT, "reply.received", || async {
        let e = events_of(&stack, "communication.reply.received").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert!(!received[0].to_string().contains("bring my son"), "the text is never in the event");
    assert!(!vcare_tests::comms::table_text(&stack).await.contains("bring my son"), "sealed at rest");

    // The room ends: a reply about it is answered so and emits nothing.
    let url = format!("{}/v1/virtual-care/rooms/{room_id}/end", stack.base);
    let (status, _, _) = stack.send(stack.http.post(url).bearer_auth(&dr)).await;
    assert_eq!(status, 200);
    assert_eq!(inbound(&stack, "vonage", "v-reply-2", PHONE, "X").await, 204);
    let texts = texts_reach(&p, 5).await;
    assert!(texts[4].contains("cancelled or has ended"), "{texts:?}");
    assert!(events_of(&stack, "communication.appointment.cancel_requested").await.is_empty());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(gateway_texts(&p).len(), 5);
    stack.stop().await;
}

/// The gateway's inbound signature as the gateway's own side would make
/// it: Python's standard `hmac`, not vcare's code.
#[test]
fn the_gateways_inbound_signature_is_the_standard_hmac_sha256_of_timestamp_dot_body() {
    let body = r#"{"messageId":"g-1","from":"+93701234567","text":"لغو"}"#;
    let script = "import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), (sys.argv[2] + '.' + sys.argv[3]).encode(), hashlib.sha256).hexdigest())";
    let out = std::process::Command::new(vcare_tests::root().join(".venv/bin/python"))
        .args(["-c", script, GATEWAY_INBOUND_SECRET, "1796000000", body])
        .output()
        .expect("the project's Python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let python = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(gateway_inbound_signature(GATEWAY_INBOUND_SECRET, "1796000000", body.as_bytes()), python);
}
