//! Clinic templates (issue 18) through the local gateway: saved as
//! immutable versions, previewed with SMS segments, used by notifications
//! (shadowing the built-in of the same name, the version recorded),
//! refused at save when broken, and never seen by another clinic.

use std::time::Duration;

use serde_json::{Value, json};
use vcare_tests::TestStack;
use vcare_tests::comms::{PHONE, Providers, accept, sms_to, wait_for};

const WAIT: Duration = Duration::from_secs(30);
const TEMPLATES: &str = "/v1/communication/templates";

async fn put(stack: &TestStack, token: &str, name: &str, body: &Value) -> (u16, Value) {
    let (status, _, out) =
        stack.send(stack.http.put(format!("{}{TEMPLATES}/{name}", stack.base)).bearer_auth(token).json(body)).await;
    (status, out)
}

async fn preview(stack: &TestStack, token: &str, name: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}{TEMPLATES}/{name}/preview", stack.base);
    let (status, _, out) = stack.send(stack.http.post(url).bearer_auth(token).json(body)).await;
    (status, out)
}

fn reminder(sms_en: &str) -> Value {
    json!({
        "category": "appointment-reminders",
        "variables": ["when"],
        "locales": {
            "en": {"sms": sms_en, "email": {"subject": "{{ clinic }}", "text": "At {{ when }}", "html": "<b>{{ when }}</b>"}},
            "fa-AF": {"sms": "{{ clinic }}: نوبت شما {{ when }} است.{% if channel == 'sms' %} توقف STOP{% endif %}"}
        }
    })
}

fn notification(template: &str, version: Option<u64>) -> Value {
    let mut b = json!({
        "recipient": {"userId": "u-pat", "phone": PHONE, "locale": "en-GB"},
        "channels": ["sms"], "template": template, "variables": {"when": "Tuesday 10:00"}, "priority": "high",
    });
    if let Some(v) = version {
        b["templateVersion"] = json!(v);
    }
    b
}

#[tokio::test]
async fn a_clinic_template_is_versioned_previewed_and_shadows_the_built_in_for_its_clinic_only() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let admin = stack.token("u-admin", Some("c1"), &["clinic-admin"]);
    let doctor = stack.token("u-doc", Some("c1"), &["doctor"]);
    let patient = stack.token("u-pat", Some("c1"), &["patient"]);

    // Two saves: two immutable versions, the second active.
    let (status, first) =
        put(&stack, &admin, "appointment-reminder", &reminder("C1 v1 {{ when }}. STOP to opt out.")).await;
    assert_eq!((status, first["version"].clone()), (201, json!(1)), "{first}");
    let (status, second) =
        put(&stack, &admin, "appointment-reminder", &reminder("C1 v2 {{ when }}. STOP to opt out.")).await;
    assert_eq!((status, second["version"].clone()), (201, json!(2)), "{second}");
    let (status, _) = put(&stack, &doctor, "appointment-reminder", &reminder("x")).await;
    assert_eq!(status, 403, "only a clinic-admin writes templates");

    let (status, _, list) = stack.get(TEMPLATES, Some(&doctor)).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    let own = items.iter().find(|t| t["name"] == "appointment-reminder").unwrap();
    assert_eq!((own["builtIn"].clone(), own["version"].clone()), (json!(false), json!(2)), "{list}");
    assert_eq!(items.iter().filter(|t| t["name"] == "appointment-reminder").count(), 1, "shadowed, not listed twice");
    assert!(items.iter().any(|t| t["name"] == "consultation-link" && t["builtIn"] == true), "{list}");
    let (status, _, v1) = stack.get(&format!("{TEMPLATES}/appointment-reminder?version=1"), Some(&doctor)).await;
    assert_eq!(status, 200, "{v1}");
    assert_eq!(v1["locales"]["en"]["sms"], "C1 v1 {{ when }}. STOP to opt out.");
    let (status, _, _) = stack.get(TEMPLATES, Some(&patient)).await;
    assert_eq!(status, 403, "patients do not read templates");
    let (status, _, _) = stack.get(&format!("{TEMPLATES}/appointment-reminder?version=9"), Some(&doctor)).await;
    assert_eq!(status, 404);

    // Preview: Persian is UCS-2, English GSM-7; the clinic's name is vcare's.
    let (status, fa) = preview(
        &stack,
        &doctor,
        "appointment-reminder",
        &json!({"locale": "fa-IR", "channel": "sms", "variables": {"when": "۱۰:۰۰"}}),
    )
    .await;
    assert_eq!(status, 200, "{fa}");
    assert_eq!((fa["locale"].clone(), fa["sms"]["encoding"].clone()), (json!("fa-AF"), json!("UCS-2")), "{fa}");
    assert_eq!(fa["sms"]["segments"], 1, "{fa}");
    let (_, en) = preview(
        &stack,
        &doctor,
        "appointment-reminder",
        &json!({"locale": "en", "channel": "sms", "variables": {"when": "10:00"}, "version": 1}),
    )
    .await;
    assert_eq!(
        (en["body"].clone(), en["sms"]["encoding"].clone()),
        (json!("C1 v1 10:00. STOP to opt out."), json!("GSM-7"))
    );
    let (_, mail) =
        preview(&stack, &doctor, "appointment-reminder", &json!({"channel": "email", "variables": {"when": "10:00"}}))
            .await;
    assert_eq!((mail["html"].clone(), mail["sms"].clone()), (json!("<b>10:00</b>"), Value::Null), "{mail}");
    let (status, missing) = preview(&stack, &doctor, "appointment-reminder", &json!({"channel": "sms"})).await;
    assert_eq!(status, 422, "a variable the template needs: {missing}");

    // Used: the active version, or the one named; GET says which.
    let id = accept(&stack, &notification("appointment-reminder", None), "t-active").await;
    let n = wait_for(&stack, &id, "sent", WAIT).await;
    assert_eq!((n["template"].clone(), n["templateVersion"].clone()), (json!("appointment-reminder"), json!(2)), "{n}");
    let id = accept(&stack, &notification("appointment-reminder", Some(1)), "t-pinned").await;
    wait_for(&stack, &id, "sent", WAIT).await;
    let texts = sms_to(&p.gateway.requests(), PHONE);
    assert_eq!(texts, ["C1 v2 Tuesday 10:00. STOP to opt out.", "C1 v1 Tuesday 10:00. STOP to opt out."]);

    // Another clinic has its own namespace: the built-in, no version.
    let c2 = stack.token("svc", Some("c2"), &["service"]);
    let (status, _, out) =
        vcare_tests::comms::post_notification(&stack, &c2, Some("t-c2"), &notification("appointment-reminder", None))
            .await;
    assert_eq!(status, 202, "{out}");
    let id = out["notificationId"].as_str().unwrap().to_owned();
    let c2_get = stack.token("svc", Some("c2"), &["service"]);
    let n = vcare_tests::eventually(WAIT, "c2's notification sent", || async {
        let (_, _, n) = stack.get(&format!("/v1/communication/notifications/{id}"), Some(&c2_get)).await;
        (n["status"] == "sent").then_some(n)
    })
    .await;
    assert_eq!((n["template"].clone(), n["templateVersion"].clone()), (json!("appointment-reminder"), Value::Null));
    let last = sms_to(&p.gateway.requests(), PHONE).pop().unwrap();
    assert!(last.starts_with("c2: video consultation Tuesday 10:00."), "the built-in: {last}");
    // And c2 cannot pin c1's version.
    let (status, _, out) = vcare_tests::comms::post_notification(
        &stack,
        &c2,
        Some("t-c2-pin"),
        &notification("appointment-reminder", Some(1)),
    )
    .await;
    assert_eq!(status, 422, "{out}");
    stack.stop().await;
}

#[tokio::test]
async fn a_broken_template_is_refused_at_save_and_nothing_is_kept() {
    let stack = TestStack::start().await;
    let admin = stack.token("u-admin", Some("c1"), &["clinic-admin"]);
    let with = |sms: &str| json!({"category": "refills", "variables": ["drug"], "locales": {"en": {"sms": sms}}});
    for (body, status) in [
        (with("Refill {{ drug }} at {{ pharmacy }}"), 422),
        (with("Refill {{ drug "), 422),
        (with("{% for c in drug %}{% for d in drug %}{{ c }}{% endfor %}{% endfor %}"), 422),
        (with("{% include 'appointment-reminder' %}"), 422),
        (with("{{ drug|tojson }}"), 422),
        (with("{{ drug * 100000000 }}"), 422),
        (with(&"x".repeat(1_601)), 400),
        (json!({"category": "refills", "locales": {"en": {"push": {"title": "t", "body": "b"}}}}), 422),
        (json!({"category": "refills", "locales": {"not a tag": {"sms": "x"}}}), 400),
        (json!({"category": "refills", "locales": {"en": {"sms": "x"}}, "extra": 1}), 400),
        (json!({"category": "sms-answers", "locales": {"en": {"sms": "x"}}}), 400),
        (json!("not an object"), 400),
    ] {
        let (got, out) = put(&stack, &admin, "refill-due", &body).await;
        assert_eq!(got, status, "{body}: {out}");
        assert_eq!(out["status"], status, "problem+json: {out}");
        assert!(!out.to_string().contains("pharmacy\\\""), "the detail names the variable, no more: {out}");
    }
    let (got, _) = put(&stack, &admin, "Bad_Name", &with("x {{ drug }}")).await;
    assert_eq!(got, 400);
    let (status, _, out) = stack.get(&format!("{TEMPLATES}/refill-due"), Some(&admin)).await;
    assert_eq!(status, 404, "nothing was kept: {out}");
    let (got, saved) = put(&stack, &admin, "refill-due", &with("Refill {{ drug }} at {{ clinic }}")).await;
    assert_eq!((got, saved["version"].clone()), (201, json!(1)), "the first good save is version 1: {saved}");
    stack.stop().await;
}
