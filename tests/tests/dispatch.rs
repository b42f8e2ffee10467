//! The dispatch worker end to end: accept through the gateway, the real SQS
//! path and dispatch function, provider stand-ins speaking each provider's
//! wire format.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use vcare_domain::notification::{Channel, Priority};
use vcare_tests::comms::{EMAIL, PHONE, Providers, accept, body, stored, wait_for};
use vcare_tests::standins::Reply;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn each_provider_gets_its_own_wire_format() {
    let p = Providers::start().await;
    // SMS by the in-country gateway, e-mail by SES.
    let stack = vcare_tests::comms::stack(&p, "gateway,twilio", "ses,sendgrid").await;
    let id = accept(&stack, &body(&["sms"], "high"), "k-gw").await;
    let n = wait_for(&stack, &id, "sent", WAIT).await;
    assert_eq!((n["channel"].as_str(), n["provider"].as_str()), (Some("sms"), Some("gateway")));
    let sent = p.gateway.requests();
    assert_eq!(sent.len(), 1);
    let r = &sent[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(r.headers["authorization"], "Bearer gw-key");
    let j = r.json();
    assert_eq!(j["to"], PHONE);
    assert_eq!(j["from"], "vcare");
    assert_eq!(
        j["text"],
        "c1: video consultation Tuesday 10:00. Join: https://meet.vcare.local/secretroomname STOP to opt out."
    );
    assert!(j["reference"].as_str().unwrap().starts_with("att_"));
    let id = accept(&stack, &body(&["email"], "high"), "k-ses").await;
    let n = wait_for(&stack, &id, "sent", WAIT).await;
    assert_eq!(n["provider"], "ses");
    stack.stop().await;

    // SMS by Twilio, e-mail by SendGrid.
    let stack = vcare_tests::comms::stack(&p, "twilio", "sendgrid").await;
    let id = accept(&stack, &body(&["sms"], "high"), "k-tw").await;
    assert_eq!(wait_for(&stack, &id, "sent", WAIT).await["provider"], "twilio");
    let r = &p.twilio.requests()[0];
    assert_eq!(r.path, "/2010-04-01/Accounts/AC0123456789/Messages.json");
    assert_eq!(r.headers["content-type"], "application/x-www-form-urlencoded");
    let basic = base64::engine::general_purpose::STANDARD.encode("AC0123456789:tw-token");
    assert_eq!(r.headers["authorization"], format!("Basic {basic}"));
    let form = r.form();
    assert_eq!((form["To"].as_str(), form["From"].as_str()), (PHONE, "+15005550006"));
    assert!(form["Body"].contains("Tuesday 10:00"));
    let id = accept(&stack, &body(&["email"], "high"), "k-sg").await;
    assert_eq!(wait_for(&stack, &id, "sent", WAIT).await["provider"], "sendgrid");
    let r = &p.sendgrid.requests()[0];
    assert_eq!((r.path.as_str(), r.headers["authorization"].as_str()), ("/v3/mail/send", "Bearer sg-key"));
    let j = r.json();
    assert_eq!(j["personalizations"][0]["to"][0]["email"], EMAIL);
    assert_eq!(j["from"]["email"], "no-reply@vcare.example");
    assert_eq!(j["subject"], "c1: your video consultation at Tuesday 10:00");
    stack.stop().await;
}

#[tokio::test]
async fn vonage_gets_its_json_and_its_refusals_are_read_from_a_200() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "vonage", "ses").await;
    let id = accept(&stack, &body(&["sms"], "high"), "k-vn").await;
    assert_eq!(wait_for(&stack, &id, "sent", WAIT).await["provider"], "vonage");
    let r = &p.vonage.requests()[0];
    assert_eq!(r.path, "/sms/json");
    let j = r.json();
    assert_eq!((j["api_key"].as_str(), j["api_secret"].as_str()), (Some("vn-key"), Some("vn-secret")));
    assert_eq!(j["to"], PHONE.trim_start_matches('+'));
    assert!(j["client-ref"].as_str().unwrap().starts_with("att_"));
    // Status 3 (invalid parameters) in a 200: permanent, not retried.
    p.vonage.set_default(Reply::json(
        200,
        json!({"message-count": "1", "messages": [{"status": "3", "error-text": "Invalid to"}]}),
    ));
    let id = accept(&stack, &body(&["sms"], "high"), "k-vn-2").await;
    let n = wait_for(&stack, &id, "failed", WAIT).await;
    assert!(n["attempts"][0]["error"].as_str().unwrap().contains("status 3"), "{n}");
    assert_eq!(p.vonage.requests().len(), 2);
    stack.stop().await;
}

#[tokio::test]
async fn push_goes_through_fcm_v1_with_a_cached_oauth_token_and_dead_tokens_are_dropped() {
    let p = Providers::start().await;
    p.fcm.script([
        Reply::json(200, json!({"name": "projects/demo-project/messages/0:live"})),
        Reply::json(
            404,
            json!({"error": {"code": 404, "status": "NOT_FOUND", "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}}),
        ),
    ]);
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let mut b = body(&["push", "sms"], "high");
    b["recipient"]["pushTokens"] = json!([
        {"platform": "fcm", "token": "tok-live"}, {"platform": "fcm", "token": "tok-dead"}, {"platform": "apns", "token": "tok-apns"}]);
    let id = accept(&stack, &b, "k-push").await;
    let n = wait_for(&stack, &id, "sent", WAIT).await;
    assert_eq!((n["channel"].as_str(), n["provider"].as_str()), (Some("push"), Some("fcm")));
    assert_eq!(n["recipient"]["pushTokens"], 2, "the dead token is dropped, the APNs one kept: {n}");
    let sends = p.fcm.requests();
    assert_eq!(sends.len(), 2);
    assert_eq!(sends[0].path, "/v1/projects/demo-project/messages:send");
    assert_eq!(sends[0].headers["authorization"], "Bearer ya29.test");
    assert_eq!(sends[0].json()["message"]["token"], "tok-live");
    assert_eq!(
        sends[0].json()["message"]["notification"]["body"],
        "c1: video consultation Tuesday 10:00. Join: https://meet.vcare.local/secretroomname"
    );
    // The OAuth2 exchange: a service-account JWT for the messaging scope.
    let grants = p.oauth.requests();
    assert_eq!(grants.len(), 1);
    let form = grants[0].form();
    assert_eq!(form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
    let assertion = &form["assertion"];
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(assertion.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], "vcare@demo-project.iam.gserviceaccount.com");
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/firebase.messaging");
    assert_eq!(claims["aud"], format!("{}/token", p.oauth.url));
    // A second notification carrying the same tokens: the dead one is left
    // out at accept (remembered by hash); FCM is busy once, and the retry
    // reuses the cached access token.
    p.fcm.script([Reply::json(503, json!({"error": {"code": 503, "status": "UNAVAILABLE"}}))]);
    let id = accept(&stack, &b, "k-push-2").await;
    let n = wait_for(&stack, &id, "sent", WAIT).await;
    assert_eq!(n["provider"], "fcm");
    assert_eq!(n["recipient"]["pushTokens"], 2, "left out at accept: {n}");
    assert_eq!(p.oauth.requests().len(), 1, "the access token is cached");
    let tokens: Vec<Value> = p.fcm.requests().iter().map(|r| r.json()["message"]["token"].clone()).collect();
    let (live, dead) = (json!("tok-live"), json!("tok-dead"));
    assert_eq!(tokens, vec![live.clone(), dead, live.clone(), live], "the dead token is never tried again");
    stack.stop().await;
}

/// The browser's side of RFC 8291: decrypts an `aes128gcm` push message.
fn decrypt_push(body: &[u8], ua_private: &aws_lc_rs::agreement::PrivateKey, ua_public: &[u8], auth: &[u8]) -> Vec<u8> {
    use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    use aws_lc_rs::agreement::{ECDH_P256, UnparsedPublicKey, agree};
    use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
    struct Len(usize);
    impl KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let hkdf = |salt: &[u8], ikm: &[u8], info: &[u8], len: usize| {
        let info = [info];
        let prk = Salt::new(HKDF_SHA256, salt).extract(ikm);
        let okm = prk.expand(&info, Len(len)).unwrap();
        let mut out = vec![0u8; len];
        okm.fill(&mut out).unwrap();
        out
    };
    let (salt, rest) = body.split_at(16);
    assert_eq!(u32::from_be_bytes(rest[..4].try_into().unwrap()), 4096);
    let idlen = rest[4] as usize;
    let (as_public, ciphertext) = rest[5..].split_at(idlen);
    let ecdh = agree(ua_private, UnparsedPublicKey::new(&ECDH_P256, as_public), (), |s| Ok(s.to_vec())).unwrap();
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let ikm = hkdf(auth, &ecdh, &key_info, 32);
    let cek = hkdf(salt, &ikm, b"Content-Encoding: aes128gcm\0", 16);
    let nonce = hkdf(salt, &ikm, b"Content-Encoding: nonce\0", 12);
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &cek).unwrap());
    let mut data = ciphertext.to_vec();
    let plain =
        key.open_in_place(Nonce::try_assume_unique_for_key(&nonce).unwrap(), Aad::empty(), &mut data).unwrap().to_vec();
    assert_eq!(plain.last(), Some(&0x02), "the last record's delimiter");
    plain[..plain.len() - 1].to_vec()
}

#[tokio::test]
async fn web_push_is_encrypted_for_the_subscription_and_signed_with_vapid() {
    use aws_lc_rs::agreement::{ECDH_P256, PrivateKey};
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let ua_private = PrivateKey::generate(&ECDH_P256).unwrap();
    let ua_public = ua_private.compute_public_key().unwrap().as_ref().to_vec();
    let auth = [7u8; 16];
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let subscription = json!({"endpoint": format!("{}/push/sub-1", p.webpush.url),
        "keys": {"p256dh": b64.encode(&ua_public), "auth": b64.encode(auth)}})
    .to_string();
    let mut b = body(&["push"], "high");
    b["recipient"]["pushTokens"] = json!([{"platform": "webpush", "token": subscription}]);
    let id = accept(&stack, &b, "k-wp").await;
    let n = wait_for(&stack, &id, "sent", WAIT).await;
    assert_eq!(n["provider"], "webpush");
    let r = &p.webpush.requests()[0];
    assert_eq!(r.path, "/push/sub-1");
    assert_eq!(r.headers["content-encoding"], "aes128gcm");
    assert!(r.headers.contains_key("ttl"));
    let message: Value = serde_json::from_slice(&decrypt_push(&r.bytes, &ua_private, &ua_public, &auth)).unwrap();
    assert_eq!(message["body"], "c1: video consultation Tuesday 10:00. Join: https://meet.vcare.local/secretroomname");
    // VAPID: `vapid t=<ES256 JWT for the push service's origin>, k=<public key>`.
    let vapid = r.headers["authorization"].strip_prefix("vapid t=").unwrap();
    let (jwt, k) = vapid.split_once(", k=").unwrap();
    let key = jsonwebtoken::DecodingKey::from_ec_der(&b64.decode(k).unwrap());
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[p.webpush.url.as_str()]);
    v.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &v).unwrap().claims;
    assert_eq!(claims["sub"], "mailto:ops@vcare.example");
    // An expired subscription (410) is dead: dropped, and nothing else to try.
    p.webpush.script([Reply::json(410, Value::Null)]);
    let id = accept(&stack, &b, "k-wp-2").await;
    let n = wait_for(&stack, &id, "failed", WAIT).await;
    assert_eq!(n["recipient"]["pushTokens"], 0, "{n}");
    stack.stop().await;
}

#[tokio::test]
async fn apns_gets_http2_with_a_provider_token_and_unregistered_tokens_are_dropped() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let device = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let mut b = body(&["push"], "high");
    b["recipient"]["pushTokens"] = json!([{"platform": "apns", "token": device}]);
    let id = accept(&stack, &b, "k-apns").await;
    assert_eq!(wait_for(&stack, &id, "sent", WAIT).await["provider"], "apns");
    let r = &p.apns.requests()[0];
    assert_eq!(r.version, "HTTP/2.0", "APNs speaks HTTP/2 only");
    assert_eq!(r.path, format!("/3/device/{device}"));
    assert_eq!((r.headers["apns-topic"].as_str(), r.headers["apns-push-type"].as_str()), ("org.vcare.app", "alert"));
    let jwt = r.headers["authorization"].strip_prefix("bearer ").unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!((header.alg, header.kid.as_deref()), (jsonwebtoken::Algorithm::ES256, Some("KEY1234567")));
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], "TEAM123456");
    assert!(r.json()["aps"]["alert"]["body"].as_str().unwrap().contains("Tuesday 10:00"));
    // 410 Unregistered: the token is dead and dropped.
    p.apns.script([Reply::json(410, json!({"reason": "Unregistered", "timestamp": 1795428000000u64}))]);
    let id = accept(&stack, &b, "k-apns-2").await;
    let n = wait_for(&stack, &id, "failed", WAIT).await;
    assert_eq!(n["recipient"]["pushTokens"], 0, "{n}");
    stack.stop().await;
}

#[tokio::test]
async fn transient_failures_retry_then_fail_over_to_the_next_provider_then_the_next_channel() {
    let p = Providers::start().await;
    p.gateway.script([
        Reply::json(503, json!({})),
        Reply::json(429, json!({})).header("retry-after", "0"),
        Reply::json(500, json!({})),
    ]);
    p.twilio
        .script([Reply::json(400, json!({"code": 21211, "message": "The 'To' number is not a valid phone number."}))]);
    let stack = vcare_tests::comms::stack(&p, "gateway,twilio", "ses").await;
    let id = accept(&stack, &body(&["sms", "email"], "high"), "k-fo").await;
    let n = wait_for(&stack, &id, "sent", WAIT).await;
    let route: Vec<(String, String, bool)> = n["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["provider"].as_str().unwrap().to_owned(),
                a["status"].as_str().unwrap().to_owned(),
                a["error"].is_string(),
            )
        })
        .collect();
    let expect = |p: &str, s: &str, e: bool| (p.to_owned(), s.to_owned(), e);
    assert_eq!(
        route,
        vec![
            expect("gateway", "failed", true),
            expect("gateway", "failed", true),
            expect("gateway", "failed", true),
            expect("twilio", "failed", true),
            expect("ses", "sent", false),
        ],
        "{n}"
    );
    assert_eq!((n["channel"].as_str(), n["provider"].as_str()), (Some("email"), Some("ses")));
    assert_eq!(p.gateway.requests().len(), 3, "three tries, then failover");
    assert_eq!(p.twilio.requests().len(), 1, "a permanent refusal is not retried");
    stack.stop().await;
}

#[tokio::test]
async fn permanent_refusals_are_not_retried_and_exhaustion_is_failed() {
    let p = Providers::start().await;
    p.gateway.set_default(Reply::json(400, json!({"error": "invalid destination"})));
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let id = accept(&stack, &body(&["sms"], "high"), "k-perm").await;
    let n = wait_for(&stack, &id, "failed", WAIT).await;
    assert_eq!(n["attempts"].as_array().unwrap().len(), 1);
    assert!(n["attempts"][0]["error"].as_str().unwrap().contains("400"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(p.gateway.requests().len(), 1);
    stack.stop().await;
}

async fn dispatcher(stack: &vcare_tests::TestStack) -> Arc<dispatch::Dispatcher> {
    let env = stack.gateway.function("DispatchFunction").unwrap().def.environment.clone();
    Arc::new(dispatch::dispatcher(&vcare_runtime::Env::from_map(env), &stack.sdk).await.unwrap())
}

#[tokio::test]
async fn concurrent_and_redelivered_copies_never_send_twice() {
    let p = Providers::start().await;
    p.gateway.set_default(Reply::json(200, json!({"messageId": "gw-1"})).after(Duration::from_millis(300)));
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let d = dispatcher(&stack).await;
    let m = stored(&stack, &[Channel::Sms], Priority::High, None, None).await;
    let (a, b) = tokio::join!(d.handle(&m), d.handle(&m));
    let outcomes = [format!("{a:?}"), format!("{b:?}")];
    assert!(outcomes.iter().any(|o| o == "Ok(Sent)"), "{outcomes:?}");
    assert_eq!(p.gateway.requests().len(), 1, "{outcomes:?}");
    // Redelivered after the send was recorded: nothing happens.
    assert_eq!(format!("{:?}", d.handle(&m).await), "Ok(Nothing)");
    assert_eq!(p.gateway.requests().len(), 1);
    stack.stop().await;
}

fn sqs_event(bodies: &[String]) -> aws_lambda_events::sqs::SqsEvent {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| json!({"messageId": format!("m{i}"), "receiptHandle": "r", "body": b, "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs"}))
        .collect();
    serde_json::from_value(json!({"Records": records})).unwrap()
}

#[tokio::test]
async fn a_batch_runs_concurrently_and_reports_only_its_bad_records() {
    let p = Providers::start().await;
    p.gateway.set_default(Reply::json(200, json!({"messageId": "gw-1"})).after(Duration::from_millis(200)));
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let d = dispatcher(&stack).await;
    let mut bodies = Vec::new();
    for _ in 0..9 {
        bodies.push(serde_json::to_string(&stored(&stack, &[Channel::Sms], Priority::High, None, None).await).unwrap());
    }
    bodies.insert(4, "{\"not\": \"a dispatch message\"}".into());
    let response = d.batch(sqs_event(&bodies)).await;
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failed, vec!["m4".to_owned()]);
    assert_eq!(p.gateway.requests().len(), 9);
    assert!(p.gateway.max_in_flight() >= 5, "the batch's sends overlap: at most {} at once", p.gateway.max_in_flight());
    stack.stop().await;
}

/// A time zone in which it is now between 21:00 and 07:00.
fn a_zone_at_night() -> &'static str {
    use chrono::Timelike;
    let zones = [
        "Etc/GMT+12",
        "Etc/GMT+9",
        "Etc/GMT+6",
        "Etc/GMT+3",
        "Etc/GMT",
        "Etc/GMT-3",
        "Etc/GMT-6",
        "Etc/GMT-9",
        "Etc/GMT-12",
    ];
    zones
        .into_iter()
        .find(|z| {
            let h = chrono::Utc::now().with_timezone(&z.parse::<chrono_tz::Tz>().unwrap()).hour();
            !(6..21).contains(&h)
        })
        .expect("some zone is at night")
}

#[tokio::test]
async fn quiet_hours_and_send_at_wait_in_the_queue() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let env = {
        let mut env = stack.gateway.function("DispatchFunction").unwrap().def.environment.clone();
        env.insert("QUIET_HOURS".into(), "21-7".into());
        env
    };
    let own_hours = |c1: &str| {
        let mut env = stack.gateway.function("DispatchFunction").unwrap().def.environment.clone();
        env.insert("QUIET_HOURS".into(), "21-7".into());
        env.insert("CLINIC_QUIET_HOURS".into(), format!("c-other=12-13;c1={c1}"));
        vcare_runtime::Env::from_map(env)
    };
    let d = dispatch::dispatcher(&vcare_runtime::Env::from_map(env), &stack.sdk).await.unwrap();
    let zone = a_zone_at_night();
    let normal = stored(&stack, &[Channel::Sms], Priority::Normal, Some(zone), None).await;
    assert_eq!(
        format!("{:?}", d.handle(&normal).await),
        "Ok(Requeued)",
        "normal priority waits for the morning in {zone}"
    );
    let high = stored(&stack, &[Channel::Sms], Priority::High, Some(zone), None).await;
    let attempts =
        || vcare_runtime::metrics::counted("DispatchAttempts", &[("provider", "gateway"), ("channel", "sms")]);
    let before = attempts();
    assert_eq!(format!("{:?}", d.handle(&high).await), "Ok(Sent)", "high goes now");
    assert!(attempts() > before, "the attempt is counted for the SLO alarm");
    let later =
        stored(&stack, &[Channel::Sms], Priority::High, None, Some(chrono::Utc::now() + chrono::Duration::minutes(30)))
            .await;
    assert_eq!(format!("{:?}", d.handle(&later).await), "Ok(Requeued)", "sendAt in the future");
    assert_eq!(p.gateway.requests().len(), 1);
    // A clinic with its own hours: none at all, so its normal message goes now.
    let off = dispatch::dispatcher(&own_hours("off"), &stack.sdk).await.unwrap();
    let night = stored(&stack, &[Channel::Sms], Priority::Normal, Some(zone), None).await;
    assert_eq!(format!("{:?}", off.handle(&night).await), "Ok(Sent)", "c1 has no quiet hours");
    // ... or quiet around the clock (0-23: only 23:00-00:00 is awake).
    use chrono::Timelike;
    let always = dispatch::dispatcher(&own_hours("0-23"), &stack.sdk).await.unwrap();
    let zone_awake = ["Etc/GMT+12", "Etc/GMT-12", "Etc/GMT", "Etc/GMT+6", "Etc/GMT-6"]
        .into_iter()
        .find(|z| chrono::Utc::now().with_timezone(&z.parse::<chrono_tz::Tz>().unwrap()).hour() != 23)
        .unwrap();
    let day = stored(&stack, &[Channel::Sms], Priority::Normal, Some(zone_awake), None).await;
    assert_eq!(format!("{:?}", always.handle(&day).await), "Ok(Requeued)", "c1's own hours, not the default");
    assert_eq!(p.gateway.requests().len(), 2);
    stack.stop().await;
}

#[tokio::test]
async fn the_adapters_health_reports_each_provider() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let url = format!("{}/v1/communication/notifications/health", stack.base);
    let (status, _, health) =
        stack.send(stack.http.get(&url).bearer_auth(stack.token("svc", Some("c1"), &["service"]))).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    let state = |name: &str| {
        let a = health["adapters"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap().clone();
        (
            a["channel"].as_str().unwrap().to_owned(),
            a["state"].as_str().unwrap().to_owned(),
            a["failoverPosition"].clone(),
        )
    };
    assert_eq!(state("gateway"), ("sms".into(), "active".into(), json!(1)));
    assert_eq!(state("twilio"), ("sms".into(), "configured".into(), Value::Null));
    assert_eq!(state("vonage"), ("sms".into(), "configured".into(), Value::Null));
    assert_eq!(state("fcm"), ("push".into(), "active".into(), json!(1)));
    assert_eq!(state("webpush"), ("push".into(), "active".into(), json!(2)));
    assert_eq!(state("apns"), ("push".into(), "active".into(), json!(3)));
    assert_eq!(state("ses"), ("email".into(), "active".into(), json!(1)));
    assert_eq!(state("sendgrid"), ("email".into(), "configured".into(), Value::Null));
    let (status, _, _) =
        stack.send(stack.http.get(&url).bearer_auth(stack.token("u-pat", Some("c1"), &["patient"]))).await;
    assert_eq!(status, 403);
    let (status, _, _) = stack.send(stack.http.get(&url)).await;
    assert_eq!(status, 401);
    stack.stop().await;
}

#[tokio::test]
async fn a_provider_rate_limit_paces_sends_and_requeues_what_would_wait_long() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let mut env = stack.gateway.function("DispatchFunction").unwrap().def.environment.clone();
    env.insert("PROVIDER_RATE_LIMITS".into(), "gateway=0.2".into());
    let d = dispatch::dispatcher(&vcare_runtime::Env::from_map(env), &stack.sdk).await.unwrap();
    let first = stored(&stack, &[Channel::Sms], Priority::High, None, None).await;
    let second = stored(&stack, &[Channel::Sms], Priority::High, None, None).await;
    assert_eq!(format!("{:?}", d.handle(&first).await), "Ok(Sent)");
    assert_eq!(
        format!("{:?}", d.handle(&second).await),
        "Ok(Requeued)",
        "one send per 5 s: the next one comes back later"
    );
    assert_eq!(p.gateway.requests().len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn bad_dispatch_settings_fail_the_cold_start_by_name() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let base = stack.gateway.function("DispatchFunction").unwrap().def.environment.clone();
    for (name, value) in [
        ("QUIET_HOURS", "evenings"),
        ("QUIET_HOURS", "21-25"),
        ("CLINIC_QUIET_HOURS", "c1=21-7;c2"),
        ("CLINIC_QUIET_HOURS", "c1=late"),
        ("SMS_PROVIDERS", "gateway,pigeon"),
        // A provider of another channel is no SMS provider.
        ("SMS_PROVIDERS", "gateway,ses"),
        ("EMAIL_PROVIDERS", "twilio"),
        ("PROVIDER_RATE_LIMITS", "gateway=fast"),
        ("MAX_TRIES_PER_PROVIDER", "0"),
        ("PROVIDER_TIMEOUT_MS", "-1"),
        ("PUSH_SERVICE_HOSTS", "fcm.googleapis.com,not a host"),
        ("PUSH_ALLOW_LOOPBACK", "sometimes"),
        // The time budget: a claim written off while its invocation may still send.
        ("CLAIM_TIMEOUT_SECONDS", "20"),
        ("CLAIM_TIMEOUT_SECONDS", "900"),
    ] {
        let mut env = base.clone();
        env.insert(name.into(), value.into());
        let err = dispatch::dispatcher(&vcare_runtime::Env::from_map(env), &stack.sdk).await.err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains(name), "{name}={value}: {text:?}");
    }
    stack.stop().await;
}

/// Time is the dispatcher's dependency: on a clock set a day ahead, a
/// notification whose `sendAt` is tomorrow is due now, while the system
/// clock's dispatcher re-queues it.
#[tokio::test]
async fn the_dispatcher_reads_time_from_its_clock() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let env = vcare_runtime::Env::from_map(stack.gateway.function("DispatchFunction").unwrap().def.environment.clone());
    let tomorrow = chrono::Utc::now() + chrono::Duration::hours(24);
    let m = stored(&stack, &[Channel::Sms], Priority::High, None, Some(tomorrow)).await;
    let today = dispatch::dispatcher(&env, &stack.sdk).await.unwrap();
    assert_eq!(format!("{:?}", today.handle(&m).await), "Ok(Requeued)");
    let clock = vcare_runtime::Clock::shifted(chrono::Duration::hours(23));
    let ahead = vcare_comms::dispatch::dispatcher(&env, &stack.sdk, clock.clone()).await.unwrap();
    assert_eq!(format!("{:?}", ahead.handle(&m).await), "Ok(Requeued)", "an hour early");
    clock.advance(chrono::Duration::hours(1) + chrono::Duration::seconds(5));
    assert_eq!(format!("{:?}", ahead.handle(&m).await), "Ok(Sent)", "due on the clock that says so");
    assert_eq!(p.gateway.requests().len(), 1);
    stack.stop().await;
}

/// A refusal that concerns the recipient ends the channel, not only the
/// provider: a patient who replied STOP at Twilio (21610) is not sent the
/// same SMS through the gateway or Vonage; the notification falls back to
/// e-mail. Likewise the gateway's `recipient_*` errors and Vonage's barred
/// number (status 7).
#[tokio::test]
async fn a_refusal_of_the_recipient_ends_the_channel_and_never_fails_over_to_another_sms_provider() {
    let p = Providers::start().await;
    p.twilio
        .set_default(Reply::json(400, json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient"})));
    let stack = vcare_tests::comms::stack(&p, "twilio,gateway,vonage", "ses").await;
    let id = accept(&stack, &body(&["sms", "email"], "high"), "k-stop").await;
    let n = wait_for(&stack, &id, "sent", WAIT).await;
    let route: Vec<_> = n["attempts"].as_array().unwrap().iter().map(|a| a["provider"].as_str().unwrap()).collect();
    assert_eq!(route, ["twilio", "ses"], "{n}");
    assert_eq!(n["channel"], "email");
    assert_eq!((p.twilio.requests().len(), p.gateway.requests().len(), p.vonage.requests().len()), (1, 0, 0));

    // Only SMS asked for: the notification fails with the refusal as its reason.
    p.gateway.set_default(Reply::json(400, json!({"error": "recipient_invalid"})));
    let gateway_first = vcare_tests::comms::stack(&p, "gateway,twilio,vonage", "ses").await;
    let id = accept(&gateway_first, &body(&["sms"], "high"), "k-invalid").await;
    let n = wait_for(&gateway_first, &id, "failed", WAIT).await;
    assert_eq!(n["attempts"].as_array().unwrap().len(), 1, "{n}");
    assert!(n["attempts"][0]["error"].as_str().unwrap().contains("refused the recipient"), "{n}");
    assert_eq!((p.gateway.requests().len(), p.twilio.requests().len()), (1, 1), "twilio only from the first stack");

    p.vonage.set_default(Reply::json(200, json!({"messages": [{"status": "7", "error-text": "Number barred"}]})));
    let vonage_first = vcare_tests::comms::stack(&p, "vonage,gateway", "ses").await;
    let id = accept(&vonage_first, &body(&["sms"], "high"), "k-barred").await;
    wait_for(&vonage_first, &id, "failed", WAIT).await;
    assert_eq!((p.vonage.requests().len(), p.gateway.requests().len()), (1, 1), "the gateway is not tried again");
    for s in [stack, gateway_first, vonage_first] {
        s.stop().await;
    }
}
