//! The patient's word (issue 17): preferences, the consent history and
//! the suppression list, through the local gateway, honoured by dispatch
//! at send time.

use std::time::Duration;

use serde_json::{Value, json};
use vcare_tests::TestStack;
use vcare_tests::comms::{EMAIL, PHONE, Providers, accept, body, get, wait_for};
use vcare_tests::standins::Reply;

const WAIT: Duration = Duration::from_secs(30);

async fn put_preferences(stack: &TestStack, token: &str, user: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}/v1/communication/recipients/{user}/preferences", stack.base);
    let (status, _, out) = stack.send(stack.http.put(url).bearer_auth(token).json(body)).await;
    (status, out)
}

async fn consents(stack: &TestStack, token: &str, user: &str) -> (u16, Value) {
    let (status, _, out) = stack.get(&format!("/v1/communication/recipients/{user}/consents"), Some(token)).await;
    (status, out)
}

async fn suppression(stack: &TestStack, address: &str) -> Value {
    let admin = stack.token("admin-1", Some("c1"), &["clinic-admin"]);
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("channel", if address.contains('@') { "email" } else { "sms" })
        .append_pair("address", address)
        .finish();
    let (status, _, out) = stack.get(&format!("/v1/communication/suppressions?{query}"), Some(&admin)).await;
    assert_eq!(status, 200, "{out}");
    out
}

fn route(n: &Value) -> Vec<(String, String)> {
    n["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["status"].as_str().unwrap().to_owned(), a["provider"].as_str().unwrap_or("-").to_owned()))
        .collect()
}

#[tokio::test]
async fn a_patient_sets_preferences_and_each_change_is_in_the_history() {
    let stack = TestStack::start().await;
    let patient = stack.token("u-pat", Some("c1"), &["patient"]);
    let (status, _, out) = stack.get("/v1/communication/recipients/u-pat/preferences", Some(&patient)).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["channels"], json!({"sms": true, "email": true, "push": true}), "defaults where never set");
    let (status, out) = put_preferences(
        &stack,
        &patient,
        "u-pat",
        &json!({"channels": {"sms": false}, "categories": {"medication-reminders": {"push": false}}, "quietHours": "22-6"}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["channels"]["sms"], false);
    assert_eq!(out["quietHours"], "22-6");
    // The same body again adds nothing; turning SMS back on adds one line.
    put_preferences(&stack, &patient, "u-pat", &json!({"channels": {"sms": false}})).await;
    put_preferences(&stack, &patient, "u-pat", &json!({"channels": {"sms": true}})).await;
    let (status, history) = consents(&stack, &patient, "u-pat").await;
    assert_eq!(status, 200, "{history}");
    let lines: Vec<(Value, Value, Value)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["channel"].clone(), e["granted"].clone(), e["source"].clone()))
        .collect();
    assert_eq!(
        lines,
        [
            (json!("sms"), json!(true), json!("api")),
            (json!("push"), json!(false), json!("api")),
            (json!("sms"), json!(false), json!("api"))
        ],
        "newest first: {history}"
    );
    assert_eq!(history["items"][1]["category"], "medication-reminders");
    assert_eq!(history["items"][0]["by"], "u-pat");

    // Bad bodies: 400, nothing kept.
    for bad in [
        json!({"channels": {"fax": false}}),
        json!({"categories": {"lottery": {"sms": false}}}),
        json!({"timezone": "Mars/Olympus"}),
        json!({"quietHours": "late"}),
        json!({"colour": "blue"}),
    ] {
        let (status, out) = put_preferences(&stack, &patient, "u-pat", &bad).await;
        assert_eq!(status, 400, "{bad}: {out}");
    }
    let (_, after) = consents(&stack, &patient, "u-pat").await;
    assert_eq!(after["items"].as_array().unwrap().len(), 3);

    // Another patient may not read or change them; the clinic's admin may; another clinic sees its own.
    let other = stack.token("u-other", Some("c1"), &["patient"]);
    assert_eq!(stack.get("/v1/communication/recipients/u-pat/preferences", Some(&other)).await.0, 403);
    assert_eq!(put_preferences(&stack, &other, "u-pat", &json!({"channels": {"sms": false}})).await.0, 403);
    let doctor = stack.token("dr-1", Some("c1"), &["doctor"]);
    assert_eq!(consents(&stack, &doctor, "u-pat").await.0, 403);
    let admin = stack.token("admin-1", Some("c1"), &["clinic-admin"]);
    assert_eq!(consents(&stack, &admin, "u-pat").await.0, 200);
    let elsewhere = stack.token("admin-2", Some("c2"), &["clinic-admin"]);
    let (_, theirs) = consents(&stack, &elsewhere, "u-pat").await;
    assert_eq!(theirs["items"], json!([]), "another clinic's history is its own");
    let (status, _, out) = stack.get("/v1/communication/recipients/u-pat/consents?cursor=bm9wZQ", Some(&admin)).await;
    assert_eq!(status, 400, "{out}");
    stack.stop().await;
}

#[tokio::test]
async fn an_opt_out_made_after_accept_still_stops_the_send_and_falls_back_to_email() {
    let p = Providers::start().await;
    // The first SMS waits in sendAt, so the opt-out lands after accept.
    let stack = vcare_tests::comms::stack(&p, "gateway,twilio", "sendgrid").await;
    let mut b = body(&["sms", "email"], "high");
    b["sendAt"] = json!((chrono::Utc::now() + chrono::Duration::seconds(3)).to_rfc3339());
    let id = accept(&stack, &b, "k-later").await;
    let patient = stack.token("u-pat", Some("c1"), &["patient"]);
    let (status, out) = put_preferences(&stack, &patient, "u-pat", &json!({"channels": {"sms": false}})).await;
    assert_eq!(status, 200, "{out}");
    let n = wait_for(&stack, &id, "sent", WAIT).await;
    assert_eq!(route(&n), [("skipped".into(), "-".into()), ("sent".into(), "sendgrid".into())], "{n}");
    assert_eq!(n["attempts"][0]["error"], "opted-out");
    assert_eq!((p.gateway.requests().len(), p.twilio.requests().len(), p.sendgrid.requests().len()), (0, 0, 1));

    // A category opt-out on e-mail too: nothing left, `suppressed` with its event.
    let off = json!({"categories": {"appointment-reminders": {"email": false}}});
    assert_eq!(put_preferences(&stack, &patient, "u-pat", &off).await.0, 200);
    let id = accept(&stack, &body(&["sms", "email"], "high"), "k-none").await;
    let n = wait_for(&stack, &id, "suppressed", WAIT).await;
    assert_eq!(route(&n), [("skipped".into(), "-".into()), ("skipped".into(), "-".into())], "{n}");
    let kinds = vcare_tests::comms::outbox_events(&stack, &id).await;
    assert!(kinds.contains(&"suppressed".to_owned()), "{kinds:?}");
    assert!(!kinds.contains(&"failed".to_owned()), "{kinds:?}");
    // Another category still goes by e-mail.
    let mut general = body(&["sms", "email"], "high");
    general["category"] = json!("general");
    let id = accept(&stack, &general, "k-general").await;
    wait_for(&stack, &id, "sent", WAIT).await;
    assert_eq!(p.sendgrid.requests().len(), 2);
    assert_eq!(p.gateway.requests().len() + p.twilio.requests().len(), 0);
    stack.stop().await;
}

/// A 21610 at Twilio suppresses the number for the clinic (source
/// `provider`): the next SMS reaches no SMS provider at all, the gateway
/// included; a clinic-admin may lift it with a reason, kept in the history.
#[tokio::test]
async fn twilio_21610_suppresses_the_number_so_the_next_sms_never_reaches_any_provider() {
    let p = Providers::start().await;
    p.twilio
        .set_default(Reply::json(400, json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient"})));
    let stack = vcare_tests::comms::stack(&p, "twilio,gateway", "sendgrid").await;
    let id = accept(&stack, &body(&["sms"], "high"), "k-first").await;
    wait_for(&stack, &id, "failed", WAIT).await;
    assert_eq!((p.twilio.requests().len(), p.gateway.requests().len()), (1, 0));
    let s = suppression(&stack, PHONE).await;
    assert_eq!((s["suppressed"].clone(), s["source"].clone()), (json!(true), json!("provider")), "{s}");
    assert_eq!(suppression(&stack, EMAIL).await["suppressed"], false);

    let id = accept(&stack, &body(&["sms", "email"], "high"), "k-second").await;
    let n = wait_for(&stack, &id, "sent", WAIT).await;
    assert_eq!(n["attempts"][0]["error"], "suppressed", "{n}");
    assert_eq!((p.twilio.requests().len(), p.gateway.requests().len()), (1, 0), "no SMS provider is called again");
    let id = accept(&stack, &body(&["sms"], "high"), "k-third").await;
    wait_for(&stack, &id, "suppressed", WAIT).await;

    // Lifting it: clinic-admin only, a reason required, kept in the history.
    let admin = stack.token("admin-1", Some("c1"), &["clinic-admin"]);
    let url = format!("{}/v1/communication/suppressions?channel=sms&address=%2B93701234567", stack.base);
    let (status, _, _) = stack.send(stack.http.delete(&url).bearer_auth(&admin).json(&json!({}))).await;
    assert_eq!(status, 400);
    let doctor = stack.token("dr-1", Some("c1"), &["doctor"]);
    let (status, _, _) = stack.send(stack.http.delete(&url).bearer_auth(&doctor).json(&json!({"reason": "x"}))).await;
    assert_eq!(status, 403);
    let reason = json!({"reason": "patient asked by phone to resume"});
    let (status, _, out) = stack.send(stack.http.delete(&url).bearer_auth(&admin).json(&reason)).await;
    assert_eq!(status, 204, "{out}");
    let (status, _, _) = stack.send(stack.http.delete(&url).bearer_auth(&admin).json(&reason)).await;
    assert_eq!(status, 404, "not suppressed any more");
    assert_eq!(suppression(&stack, PHONE).await["suppressed"], false);
    let (_, history) = consents(&stack, &admin, "u-pat").await;
    assert_eq!(history["items"][0]["source"], "provider", "the user's history has the provider's opt-out: {history}");
    assert_eq!(history["items"][0]["by"], "twilio");
    // The address's own history has both, the lift with its reason.
    let hash =
        vcare_tests::comms::comms(&stack).address_hash(vcare_domain::notification::Channel::Sms, PHONE).await.unwrap();
    let page = vcare_tests::comms::comms(&stack)
        .consents("c1", &vcare_domain::consent::address_subject(vcare_domain::notification::Channel::Sms, &hash), None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].reason.as_deref(), Some("patient asked by phone to resume"));
    assert!(page.items[0].granted && !page.items[1].granted);
    // Nothing in clear: the table holds the number nowhere.
    let dump = vcare_tests::comms::table_text(&stack).await;
    assert!(!dump.contains(PHONE) && !dump.contains("93701234567"), "an address in clear");

    // Bad lookups are 400.
    for q in ["channel=sms&address=123", "channel=fax&address=%2B93701234567", "channel=sms", "x=1"] {
        let (status, _, _) = stack.get(&format!("/v1/communication/suppressions?{q}"), Some(&admin)).await;
        assert_eq!(status, 400, "{q}");
    }
    let _ = get(&stack, &id).await;
    stack.stop().await;
}
