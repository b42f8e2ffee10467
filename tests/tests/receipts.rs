//! Delivery receipts (issue 5): each provider's signature, the state
//! machine under every order and repetition, the provider's race, the
//! sweep, and the events — through the local gateway, with the test
//! playing the provider that posts the receipt.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue as V;
use serde_json::{Value, json};
use vcare_domain::notification::{Channel, Priority};
use vcare_providers::receipts::{VonageSigning, twilio_signature, vonage_signature};
use vcare_runtime::metrics::counted;
use vcare_tests::TestStack;
use vcare_tests::comms::{
    PUBLIC_BASE, Providers, TWILIO_TOKEN, VONAGE_SIGNATURE_SECRET, accept, body, get, outbox_events as events,
    partition_items as items, stored, wait_for,
};
use vcare_tests::standins::Reply;

const PATH: &str = "/v1/communication/dlr";

/// The provider's receipt URL, as the stack serves it (the public base
/// replaced by the stack's address).
fn local(stack: &TestStack, public_url: &str) -> String {
    public_url.replacen(PUBLIC_BASE, &stack.base, 1)
}

fn query_of(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

async fn post_json(stack: &TestStack, url: &str, body: &Value) -> (u16, Value) {
    let (status, _, out) = stack.send(stack.http.post(local(stack, url)).json(body)).await;
    (status, out)
}

async fn post_form(stack: &TestStack, url: &str, params: &[(String, String)], headers: &[(&str, String)]) -> u16 {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let mut req =
        stack.http.post(local(stack, url)).header("content-type", "application/x-www-form-urlencoded").body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    stack.send(req).await.0
}

fn count(events: &[String], kind: &str) -> usize {
    events.iter().filter(|e| *e == kind).count()
}

/// Sends one SMS through `provider` and returns (notification id, the
/// receipt URL the provider was given).
async fn sent_through(stack: &TestStack, p: &Providers, provider: &str, key: &str) -> (String, String) {
    let id = accept(stack, &body(&["sms"], "high"), key).await;
    wait_for(stack, &id, "sent", Duration::from_secs(30)).await;
    let url = match provider {
        "gateway" => p.gateway.requests().last().unwrap().json()["callbackUrl"].as_str().unwrap().to_owned(),
        "twilio" => p.twilio.requests().last().unwrap().form()["StatusCallback"].clone(),
        "vonage" => p.vonage.requests().last().unwrap().json()["callback"].as_str().unwrap().to_owned(),
        _ => unreachable!(),
    };
    (id, url)
}

fn gateway_receipt(status: &str, reference: &str) -> Value {
    json!({"messageId": "gw-msg-1", "reference": reference, "status": status, "err": "000", "doneAt": "2026-11-23T10:00:05Z"})
}

#[tokio::test]
async fn gateway_receipts_carry_a_kms_mac_over_ref_and_nothing_else_is_accepted() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let (id, url) = sent_through(&stack, &p, "gateway", "k-gw").await;
    let q = query_of(&url);
    let (clinic, rest) = q["ref"].split_once('~').unwrap();
    let (ntf, attempt) = rest.split_once('~').unwrap();
    assert_eq!((clinic, ntf), ("c1", id.as_str()));
    assert!(url.starts_with(&format!("{PUBLIC_BASE}{PATH}/gateway?")), "{url}");
    assert_eq!(p.gateway.requests().last().unwrap().json()["reference"], attempt, "the attempt id is the reference");
    let rejected_before = counted("DlrSignatureRejected", &[("provider", "gateway")]);

    // Forged: a bad sig, a sig moved to another ref, none at all, the body's
    // reference naming another attempt.
    let other_ref = format!("c1~{id}~att_aaaaaaaaaaaaaaaaaaaaaaaaaa");
    let forged = [
        url.replace(&format!("sig={}", q["sig"]), "sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        format!(
            "{PUBLIC_BASE}{PATH}/gateway?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("ref", &other_ref)
                .append_pair("sig", &q["sig"])
                .finish()
        ),
        format!(
            "{PUBLIC_BASE}{PATH}/gateway?{}",
            form_urlencoded::Serializer::new(String::new()).append_pair("ref", &q["ref"]).finish()
        ),
        format!("{PUBLIC_BASE}{PATH}/gateway"),
    ];
    for bad in &forged {
        let (status, problem) = post_json(&stack, bad, &gateway_receipt("DELIVRD", attempt)).await;
        assert_eq!(status, 401, "{bad}: {problem}");
        assert_eq!(problem["status"], 401);
    }
    let (status, _) = post_json(&stack, &url, &gateway_receipt("DELIVRD", "att_bbbbbbbbbbbbbbbbbbbbbbbbbb")).await;
    assert_eq!(status, 401, "the body's reference names another attempt");
    assert!(items(&stack, &id, "RECEIPT#").await.is_empty(), "a refused receipt writes nothing");
    assert_eq!(get(&stack, &id).await["status"], "sent");
    assert!(
        counted("DlrSignatureRejected", &[("provider", "gateway")]) >= rejected_before + 5,
        "each refusal is counted"
    );

    // Authentic but unreadable: 400, nothing written.
    let (status, problem) = post_json(&stack, &url, &json!({"status": 7})).await;
    assert_eq!((status, problem["status"].clone()), (400, json!(400)), "{problem}");
    let (status, _, _) = stack.send(stack.http.post(local(&stack, &url)).body("not json")).await;
    assert_eq!(status, 400);
    assert!(items(&stack, &id, "RECEIPT#").await.is_empty());

    // Authentic: applied; the same receipt again is kept once.
    for _ in 0..2 {
        let (status, out) = post_json(&stack, &url, &gateway_receipt("DELIVRD", attempt)).await;
        assert_eq!(status, 204, "{out}");
    }
    let n = get(&stack, &id).await;
    assert_eq!(n["status"], "delivered", "{n}");
    assert_eq!(n["attempts"][0]["providerStatus"], "DELIVRD");
    assert_eq!(items(&stack, &id, "RECEIPT#").await.len(), 1, "a repeat is kept once");
    let raw = format!("{:?}", items(&stack, &id, "RECEIPT#").await);
    assert!(!raw.contains("gw-msg-1") && !raw.contains("doneAt"), "the raw receipt is sealed");
    assert_eq!(count(&events(&stack, &id).await, "delivered"), 1);
    let (status, _) = post_json(&stack, &format!("{PUBLIC_BASE}{PATH}/pigeon"), &json!({})).await;
    assert_eq!(status, 404);
    stack.stop().await;
}

#[tokio::test]
async fn twilio_receipts_are_checked_over_the_full_url_and_every_parameter() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "twilio", "ses").await;
    let (id, url) = sent_through(&stack, &p, "twilio", "k-tw").await;
    assert!(url.starts_with(&format!("{PUBLIC_BASE}{PATH}/twilio?ref=")), "{url}");
    assert!(query_of(&url)["ref"].starts_with(&format!("c1~{id}~att_")), "{url}");
    let params = |status: &str, code: Option<&str>| {
        let mut p: Vec<(String, String)> = vec![
            ("AccountSid".into(), "AC0123456789".into()),
            ("ApiVersion".into(), "2010-04-01".into()),
            ("From".into(), "+15005550006".into()),
            ("MessageSid".into(), "SM0123456789abcdef".into()),
            ("MessageStatus".into(), status.into()),
            ("SmsSid".into(), "SM0123456789abcdef".into()),
            ("SmsStatus".into(), status.into()),
            ("To".into(), vcare_tests::comms::PHONE.into()),
        ];
        if let Some(c) = code {
            p.push(("ErrorCode".into(), c.into()));
        }
        p
    };
    let signed = |url: &str, params: &[(String, String)]| twilio_signature(TWILIO_TOKEN, url, &params.to_vec());
    let rejected_before = counted("DlrSignatureRejected", &[("provider", "twilio")]);

    let sent = params("sent", None);
    let sig = signed(&url, &sent);
    // Tampered body, tampered URL, an added parameter, missing: 401.
    let mut tampered = sent.clone();
    tampered[4].1 = "delivered".into();
    assert_eq!(post_form(&stack, &url, &tampered, &[("x-twilio-signature", sig.clone())]).await, 401);
    let moved = format!("{url}&x=1");
    assert_eq!(post_form(&stack, &moved, &sent, &[("x-twilio-signature", sig.clone())]).await, 401);
    let mut added = sent.clone();
    added.push(("Extra".into(), "1".into()));
    assert_eq!(post_form(&stack, &url, &added, &[("x-twilio-signature", sig.clone())]).await, 401);
    assert_eq!(post_form(&stack, &url, &sent, &[]).await, 401);
    assert!(items(&stack, &id, "RECEIPT#").await.is_empty());
    assert!(counted("DlrSignatureRejected", &[("provider", "twilio")]) >= rejected_before + 4);

    // sent, then undelivered with Twilio's error code, then a late delivered: undelivered sticks.
    assert_eq!(post_form(&stack, &url, &sent, &[("x-twilio-signature", sig)]).await, 204);
    assert_eq!(get(&stack, &id).await["status"], "sent");
    let undelivered = params("undelivered", Some("30003"));
    assert_eq!(post_form(&stack, &url, &undelivered, &[("x-twilio-signature", signed(&url, &undelivered))]).await, 204);
    let delivered = params("delivered", None);
    assert_eq!(post_form(&stack, &url, &delivered, &[("x-twilio-signature", signed(&url, &delivered))]).await, 204);
    let n = get(&stack, &id).await;
    assert_eq!(n["status"], "undelivered", "{n}");
    assert_eq!(n["attempts"][0]["errorCode"], "30003");
    assert_eq!(items(&stack, &id, "RECEIPT#").await.len(), 3, "every receipt is kept");
    assert_eq!(count(&events(&stack, &id).await, "failed"), 1);
    assert_eq!(count(&events(&stack, &id).await, "delivered"), 0);
    stack.stop().await;
}

#[tokio::test]
async fn a_signed_receipt_applies_only_to_its_own_providers_attempts() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let (id, gateway_url) = sent_through(&stack, &p, "gateway", "k-cross").await;
    // A correctly signed Twilio receipt whose ref names the gateway's attempt.
    let reference = query_of(&gateway_url)["ref"].clone();
    let url = format!(
        "{PUBLIC_BASE}{PATH}/twilio?{}",
        form_urlencoded::Serializer::new(String::new()).append_pair("ref", &reference).finish()
    );
    let undelivered: Vec<(String, String)> = vec![
        ("AccountSid".into(), "AC0123456789".into()),
        ("MessageSid".into(), "SM0123456789abcdef".into()),
        ("MessageStatus".into(), "undelivered".into()),
        ("ErrorCode".into(), "30003".into()),
    ];
    let sig = twilio_signature(TWILIO_TOKEN, &url, &undelivered);
    assert_eq!(post_form(&stack, &url, &undelivered, &[("x-twilio-signature", sig)]).await, 204);
    let n = get(&stack, &id).await;
    assert_eq!(n["status"], "sent", "the gateway's attempt is not moved by Twilio: {n}");
    assert_eq!(n["attempts"][0]["status"], "sent", "{n}");
    assert_eq!(count(&events(&stack, &id).await, "failed"), 0);
    // The gateway's own receipt still applies.
    let attempt = p.gateway.requests().last().unwrap().json()["reference"].as_str().unwrap().to_owned();
    let (status, _) = post_json(&stack, &gateway_url, &gateway_receipt("DELIVRD", &attempt)).await;
    assert_eq!(status, 204);
    assert_eq!(get(&stack, &id).await["status"], "delivered");
    stack.stop().await;
}

#[tokio::test]
async fn vonage_receipts_are_checked_by_their_sig_and_must_name_the_attempt() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "vonage", "ses").await;
    let (id, url) = sent_through(&stack, &p, "vonage", "k-vn").await;
    let attempt = p.vonage.requests().last().unwrap().json()["client-ref"].as_str().unwrap().to_owned();
    assert_eq!(query_of(&url)["ref"], format!("c1~{id}~{attempt}"), "{url}");
    let receipt = |status: &str, client_ref: &str, timestamp: i64| {
        let mut params: Vec<(String, String)> = vec![
            ("msisdn".into(), "93701234567".into()),
            ("to".into(), "vcare".into()),
            ("network-code".into(), "41201".into()),
            ("messageId".into(), "vn-msg-1".into()),
            ("price".into(), "0.0333".into()),
            ("status".into(), status.into()),
            ("scts".into(), "2611231000".into()),
            ("err-code".into(), if status == "delivered" { "0" } else { "1" }.into()),
            ("api-key".into(), "vn-key".into()),
            ("client-ref".into(), client_ref.into()),
            ("message-timestamp".into(), "2026-11-23 10:00:05".into()),
            ("timestamp".into(), timestamp.to_string()),
            ("nonce".into(), vcare_domain::ids::prefixed("n")),
        ];
        let sig = vonage_signature(VonageSigning::Md5Hash, VONAGE_SIGNATURE_SECRET, &params).unwrap();
        params.push(("sig".into(), sig));
        params
    };
    let now = chrono::Utc::now().timestamp();
    let mut tampered = receipt("delivered", &attempt, now);
    tampered[5].1 = "failed".into();
    assert_eq!(post_form(&stack, &url, &tampered, &[]).await, 401, "tampered");
    let mut unsigned = receipt("delivered", &attempt, now);
    unsigned.pop();
    assert_eq!(post_form(&stack, &url, &unsigned, &[]).await, 401, "missing");
    assert_eq!(post_form(&stack, &url, &receipt("delivered", &attempt, now - 3600), &[]).await, 401, "stale");
    let other = receipt("delivered", "att_cccccccccccccccccccccccccc", now);
    assert_eq!(post_form(&stack, &url, &other, &[]).await, 401, "signed for another attempt");
    assert!(items(&stack, &id, "RECEIPT#").await.is_empty());

    assert_eq!(post_form(&stack, &url, &receipt("buffered", &attempt, now), &[]).await, 204);
    assert_eq!(post_form(&stack, &url, &receipt("delivered", &attempt, now), &[]).await, 204);
    // Vonage's POST-JSON webhook form of the same receipt, repeated: kept once more at most, no new event.
    let json_receipt: serde_json::Map<String, Value> =
        receipt("delivered", &attempt, now).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let (status, _) = post_json(&stack, &url, &Value::Object(json_receipt)).await;
    assert_eq!(status, 204);
    let n = get(&stack, &id).await;
    assert_eq!(n["status"], "delivered", "{n}");
    assert_eq!(items(&stack, &id, "RECEIPT#").await.len(), 2, "buffered and delivered; the repeat is the same receipt");
    assert_eq!(count(&events(&stack, &id).await, "delivered"), 1);
    stack.stop().await;
}

/// Every order of sent / delivered / failed receipts, each doubled: the
/// first final one wins (a late `delivered` replaces only `expired`), every
/// distinct receipt is kept once, and each final event is written once.
#[tokio::test]
async fn receipts_in_any_order_and_repeated_end_in_one_state_with_one_event() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let env = stack.gateway.function("DispatchFunction").unwrap().def.environment.clone();
    let d = dispatch::dispatcher(&vcare_runtime::Env::from_map(env), &stack.sdk).await.unwrap();
    let orders: &[&[&str]] = &[
        &["ACCEPTD", "DELIVRD", "UNDELIV"],
        &["ACCEPTD", "UNDELIV", "DELIVRD"],
        &["DELIVRD", "ACCEPTD", "UNDELIV"],
        &["DELIVRD", "UNDELIV", "ACCEPTD"],
        &["UNDELIV", "ACCEPTD", "DELIVRD"],
        &["UNDELIV", "DELIVRD", "ACCEPTD"],
        &["ENROUTE", "EXPIRED", "DELIVRD"],
        &["EXPIRED", "DELIVRD", "EXPIRED"],
        &["REJECTD", "DELIVRD"],
        &["UNKNOWN", "ACCEPTD"],
    ];
    for order in orders {
        let m = stored(&stack, &[Channel::Sms], Priority::High, None, None).await;
        assert_eq!(format!("{:?}", d.handle(&m).await), "Ok(Sent)");
        let url = p.gateway.requests().last().unwrap().json()["callbackUrl"].as_str().unwrap().to_owned();
        let attempt = p.gateway.requests().last().unwrap().json()["reference"].as_str().unwrap().to_owned();
        for status in order.iter().flat_map(|s| [*s, *s]) {
            let (code, out) = post_json(&stack, &url, &gateway_receipt(status, &attempt)).await;
            assert_eq!(code, 204, "{order:?} {status}: {out}");
        }
        let first_final = order.iter().find(|s| !matches!(**s, "ACCEPTD" | "ENROUTE" | "UNKNOWN"));
        let want = match (first_final, order.contains(&"DELIVRD")) {
            (Some(&"EXPIRED"), true) => "delivered",
            (Some(&"DELIVRD"), _) => "delivered",
            (Some(&"UNDELIV"), _) => "undelivered",
            (Some(&"REJECTD"), _) => "failed",
            (Some(&"EXPIRED"), false) => "expired",
            _ => "sent",
        };
        let n = get(&stack, &m.notification_id).await;
        assert_eq!(n["status"], want, "{order:?}: {n}");
        let distinct: std::collections::HashSet<_> = order.iter().collect();
        assert_eq!(items(&stack, &m.notification_id, "RECEIPT#").await.len(), distinct.len(), "{order:?}");
        let ev = events(&stack, &m.notification_id).await;
        let (delivered, failed) = (count(&ev, "delivered"), count(&ev, "failed"));
        let expected = match want {
            "delivered" => (1, 0),
            "undelivered" | "failed" => (0, 1),
            _ => (0, 0),
        };
        assert_eq!((delivered, failed), expected, "{order:?}: {ev:?}");
    }
    stack.stop().await;
}

/// The provider's race: its receipt arrives while vcare is still waiting
/// for the provider's answer to the send. The receipt is applied to the
/// claimed attempt, and recording `sent` afterwards does not undo it.
#[tokio::test]
async fn a_receipt_that_beats_the_send_answer_is_kept_and_stays() {
    let p = Providers::start().await;
    p.gateway.script([Reply::json(200, json!({"messageId": "gw-slow"})).after(Duration::from_millis(1500))]);
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let id = accept(&stack, &body(&["sms"], "high"), "k-race").await;
    let request = vcare_tests::eventually(Duration::from_secs(20), "the gateway is called", || async {
        p.gateway.requests().last().cloned()
    })
    .await;
    let url = request.json()["callbackUrl"].as_str().unwrap().to_owned();
    let attempt = request.json()["reference"].as_str().unwrap().to_owned();
    let (status, out) = post_json(&stack, &url, &gateway_receipt("DELIVRD", &attempt)).await;
    assert_eq!(status, 204, "{out}");
    assert_eq!(get(&stack, &id).await["status"], "delivered", "applied while the send is in flight");
    // The send's answer comes; the attempt is recorded sent (its event is
    // written with it); delivered stays.
    vcare_tests::eventually(Duration::from_secs(20), "the send is recorded", || async {
        (count(&events(&stack, &id).await, "sent") == 1).then_some(())
    })
    .await;
    let n = get(&stack, &id).await;
    assert_eq!(n["status"], "delivered", "{n}");
    assert_eq!(n["attempts"][0]["status"], "delivered", "{n}");
    let ev = events(&stack, &id).await;
    assert_eq!((count(&ev, "sent"), count(&ev, "delivered")), (1, 1), "{ev:?}");
    let raw = items(&stack, &id, "NOTIF").await;
    assert!(!raw[0].contains_key("gsi1pk"), "a delivered notification awaits no receipt");
    stack.stop().await;
}

/// A receipt for an attempt not recorded (yet) is kept as pending, and
/// the sweep applies it once the attempt exists.
#[tokio::test]
async fn a_receipt_before_its_attempt_waits_for_the_sweep() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let m = stored(&stack, &[Channel::Sms], Priority::High, None, None).await;
    let attempt = vcare_domain::ids::prefixed("att");
    let reference = format!("c1~{}~{attempt}", m.notification_id);
    let key = stack.gateway.resource("DlrSigningKey").unwrap().reference.clone();
    let mac = vcare_crypto::KmsMac::new(aws_sdk_kms::Client::new(&stack.sdk), key);
    let url = format!(
        "{PUBLIC_BASE}{PATH}/gateway?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("ref", &reference)
            .append_pair("sig", &mac.sign(&reference).await.unwrap())
            .finish()
    );
    let (status, out) = post_json(&stack, &url, &gateway_receipt("DELIVRD", &attempt)).await;
    assert_eq!(status, 204, "{out}");
    assert_eq!(get(&stack, &m.notification_id).await["status"], "queued", "no attempt to apply it to");
    let receipts = items(&stack, &m.notification_id, "RECEIPT#").await;
    assert_eq!(receipts[0].get("gsi1pk"), Some(&V::S("RECEIPT#PENDING".into())), "kept as pending");

    let swept = stack.gateway.fire_schedule("DlrSweepFunction", "Sweep").await.unwrap();
    assert_eq!(swept["receiptsApplied"], 0, "still no attempt: {swept}");

    // The attempt is recorded (as dispatch's claim and send would).
    let comms = vcare_tests::comms::comms(&stack);
    let now = chrono::Utc::now();
    comms
        .store
        .update("c1", &m.notification_id, |n| {
            let mut next = n.clone();
            next.attempts.push(vcare_domain::notification::Attempt {
                attempt_id: attempt.clone(),
                channel: Channel::Sms,
                provider: "gateway".into(),
                status: vcare_domain::notification::Status::Sent,
                at: now,
                error: None,
                provider_message_id: Some("gw-msg-1".into()),
                permanent: false,
                ends_channel: false,
            });
            next.status = vcare_domain::notification::Status::Sent;
            next.delivery.insert(
                attempt.clone(),
                vcare_domain::receipt::Delivery::new(vcare_domain::notification::Status::Sent, now).by("gateway"),
            );
            Some((next, vec![]))
        })
        .await
        .unwrap();
    let swept = stack.gateway.fire_schedule("DlrSweepFunction", "Sweep").await.unwrap();
    assert!(swept["receiptsApplied"].as_u64().unwrap() >= 1, "{swept}");
    assert_eq!(get(&stack, &m.notification_id).await["status"], "delivered");
    let receipts = items(&stack, &m.notification_id, "RECEIPT#").await;
    assert!(!receipts[0].contains_key("gsi1pk"), "no longer pending");
    assert_eq!(count(&events(&stack, &m.notification_id).await, "delivered"), 1);
    stack.stop().await;
}

/// No final receipt within the expiry time: `expired`, once; a late
/// `delivered` still counts.
#[tokio::test]
async fn the_sweep_expires_deliveries_without_a_final_receipt() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let (id, url) = sent_through(&stack, &p, "gateway", "k-exp").await;
    let attempt = p.gateway.requests().last().unwrap().json()["reference"].as_str().unwrap().to_owned();
    let raw = items(&stack, &id, "NOTIF").await;
    assert!(matches!(raw[0].get("gsi1pk"), Some(V::S(b)) if b.starts_with("AWAITDLR#")), "{raw:?}");

    let env = stack.gateway.function("DlrSweepFunction").unwrap().def.environment.clone();
    let sweep = dlr_sweep::sweep(&vcare_runtime::Env::from_map(env), &stack.sdk).unwrap();
    let now = chrono::Utc::now();
    assert_eq!(sweep.run(now + chrono::Duration::hours(71)).await.unwrap().expired, 0, "not yet");
    assert_eq!(get(&stack, &id).await["status"], "sent");
    assert_eq!(sweep.run(now + chrono::Duration::hours(73)).await.unwrap().expired, 1);
    assert_eq!(get(&stack, &id).await["status"], "expired");
    assert_eq!(sweep.run(now + chrono::Duration::hours(74)).await.unwrap().expired, 0, "once");
    // Days later, from a sweep that did not run meanwhile: nothing left over.
    assert_eq!(sweep.run(now + chrono::Duration::days(6)).await.unwrap().expired, 0);

    let (status, _) = post_json(&stack, &url, &gateway_receipt("DELIVRD", &attempt)).await;
    assert_eq!(status, 204);
    assert_eq!(get(&stack, &id).await["status"], "delivered", "a late delivered replaces expired");
    let (status, _) = post_json(&stack, &url, &gateway_receipt("EXPIRED", &attempt)).await;
    assert_eq!(status, 204);
    assert_eq!(get(&stack, &id).await["status"], "delivered");
    assert_eq!(count(&events(&stack, &id).await, "delivered"), 1);
    stack.stop().await;
}
