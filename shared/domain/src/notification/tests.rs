//! The notification rules' tests.

use chrono::{DateTime, Utc};

use super::*;
use crate::Rejected;
use crate::clinic::QuietHours;
use serde_json::json;

fn request(v: serde_json::Value) -> Result<NewNotification, Rejected> {
    serde_json::from_value::<NotificationRequest>(v).expect("shape").validate(
        Utc::now(),
        |z| z == "Asia/Kabul",
        &Default::default(),
    )
}

fn body() -> serde_json::Value {
    json!({
        "recipient": {"userId": "u-pat", "phone": "+93701234567", "email": "z@example.org",
                      "pushTokens": [{"platform": "fcm", "token": "tok"}], "locale": "fa-AF", "timezone": "Asia/Kabul"},
        "channels": ["sms", "push", "email"], "template": "appointment-reminder", "variables": {"when": "10:00"},
    })
}

#[test]
fn phone_and_email_syntax() {
    for ok in ["+93701234567", "+4915112345678", "+1234567"] {
        assert!(is_e164(ok), "{ok}");
    }
    for bad in ["93701234567", "+0701234567", "+93 70 123", "+1234567890123456", "+123456", "+93-701234567"] {
        assert!(!is_e164(bad), "{bad}");
    }
    for ok in ["z@example.org", "first.last+tag@sub.example.co.uk", "ü@exämple.org"] {
        assert!(is_email(ok), "{ok}");
    }
    for bad in [
        "z@",
        "@example.org",
        "z@example",
        "z@@example.org",
        "z @example.org",
        "z@-x.org",
        ".z@example.org",
        "a..b@example.org",
    ] {
        assert!(!is_email(bad), "{bad}");
    }
}

#[test]
fn every_rule_is_enforced() {
    assert!(request(body()).is_ok());
    type Change = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Change, bool)> = vec![
        ("bad phone", Box::new(|b| b["recipient"]["phone"] = json!("0701234567")), false),
        ("bad email", Box::new(|b| b["recipient"]["email"] = json!("nope")), false),
        ("no channels", Box::new(|b| b["channels"] = json!([])), false),
        ("twice", Box::new(|b| b["channels"] = json!(["sms", "sms"])), false),
        (
            "sms without phone",
            Box::new(|b| {
                b["recipient"].as_object_mut().unwrap().remove("phone");
            }),
            true,
        ),
        ("both", Box::new(|b| b["content"] = json!({"body": "x"})), false),
        (
            "neither",
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("template");
            }),
            false,
        ),
        ("past", Box::new(|b| b["sendAt"] = json!("2020-01-01T00:00:00Z")), true),
        ("bad time", Box::new(|b| b["sendAt"] = json!("soon")), false),
        ("bad zone", Box::new(|b| b["recipient"]["timezone"] = json!("Mars/Olympus")), false),
        ("bad locale", Box::new(|b| b["recipient"]["locale"] = json!("farsi language")), false),
        ("long variable", Box::new(|b| b["variables"]["when"] = json!("x".repeat(1001))), false),
    ];
    for (what, change, impossible) in cases {
        let mut b = body();
        change(&mut b);
        match request(b) {
            Err(Rejected::Impossible(_)) => assert!(impossible, "{what}: expected 400"),
            Err(Rejected::Invalid(_)) => assert!(!impossible, "{what}: expected 422"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
}

#[test]
fn statuses_only_move_forward() {
    use Status::*;
    assert!(Queued.may_become(Sent));
    assert!(Sent.may_become(Delivered));
    assert!(!Delivered.may_become(Sent));
    assert!(!Delivered.may_become(Failed));
    assert!(Expired.may_become(Delivered));
    assert!(!Sent.may_become(Sending));
}

fn attempt(channel: Channel, provider: &str, status: Status, permanent: bool) -> Attempt {
    Attempt {
        attempt_id: "a".into(),
        channel,
        provider: provider.into(),
        status,
        at: Utc::now(),
        error: None,
        provider_message_id: None,
        permanent,
        ends_channel: false,
    }
}

#[test]
fn routes_fail_over_by_provider_then_channel() {
    let providers = [(Channel::Sms, "gateway"), (Channel::Sms, "twilio"), (Channel::Email, "ses")];
    let channels = [Channel::Sms, Channel::Email];
    assert_eq!(next_route(&channels, &[], &providers, 2), Some((Channel::Sms, "gateway")));
    let one = [attempt(Channel::Sms, "gateway", Status::Failed, false)];
    assert_eq!(
        next_route(&channels, &one, &providers, 2),
        Some((Channel::Sms, "gateway")),
        "one transient failure: retry"
    );
    let two = [
        attempt(Channel::Sms, "gateway", Status::Failed, false),
        attempt(Channel::Sms, "gateway", Status::Failed, false),
    ];
    assert_eq!(next_route(&channels, &two, &providers, 2), Some((Channel::Sms, "twilio")), "then the next provider");
    let perm =
        [attempt(Channel::Sms, "gateway", Status::Failed, true), attempt(Channel::Sms, "twilio", Status::Failed, true)];
    assert_eq!(next_route(&channels, &perm, &providers, 2), Some((Channel::Email, "ses")), "then the next channel");
    let all = [
        attempt(Channel::Sms, "gateway", Status::Failed, true),
        attempt(Channel::Sms, "twilio", Status::Failed, true),
        attempt(Channel::Email, "ses", Status::Failed, true),
    ];
    assert_eq!(next_route(&channels, &all, &providers, 2), None);
}

#[test]
fn quiet_hours_in_the_recipients_zone() {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    // Kabul is UTC+4:30: 18:00Z is 22:30 there, quiet until 07:00 (02:30Z next day).
    assert_eq!(
        quiet_until(at("2026-11-23T18:00:00Z"), Some("Asia/Kabul"), Priority::Normal, QuietHours::default()),
        Some(at("2026-11-24T02:30:00Z"))
    );
    // 23:00Z is 03:30 there: until 07:00 the same local day.
    assert_eq!(
        quiet_until(at("2026-11-23T23:00:00Z"), Some("Asia/Kabul"), Priority::Normal, QuietHours::default()),
        Some(at("2026-11-24T02:30:00Z"))
    );
    assert_eq!(
        quiet_until(at("2026-11-23T06:00:00Z"), Some("Asia/Kabul"), Priority::Normal, QuietHours::default()),
        None,
        "10:30 local"
    );
    assert_eq!(
        quiet_until(at("2026-11-23T18:00:00Z"), Some("Asia/Kabul"), Priority::High, QuietHours::default()),
        None,
        "high goes now"
    );
    assert_eq!(
        quiet_until(at("2026-11-23T18:00:00Z"), None, Priority::Normal, QuietHours::default()),
        None,
        "no zone, no quiet hours"
    );
}

#[test]
fn masks_keep_too_little_to_use() {
    assert_eq!(mask_phone("+93701234567"), "+93******567");
    assert_eq!(mask_email("zahra@example.org"), "z***@example.org");
}

#[test]
fn a_request_may_not_take_vcares_own_answer_category_and_replies_need_sms() {
    let now = chrono::Utc::now();
    let push = crate::push::PushEndpoints::parse("", false).unwrap();
    let request = |extra: serde_json::Value| {
        let mut body = serde_json::json!({
            "recipient": {"phone": "+93701234567", "email": "a@example.org"},
            "channels": ["email"], "content": {"body": "hi"},
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        serde_json::from_value::<NotificationRequest>(body).unwrap()
    };
    let answers = request(serde_json::json!({"category": crate::consent::ANSWER_CATEGORY}));
    assert!(matches!(answers.clone().validate(now, |_| true, &push), Err(crate::Rejected::Invalid(_))));
    assert!(answers.validate_as(now, |_| true, &push, true).is_ok());
    let bad = request(serde_json::json!({"category": "Not A Category"}));
    assert!(matches!(bad.validate(now, |_| true, &push), Err(crate::Rejected::Invalid(_))));
    let replies = request(serde_json::json!({"replies": ["confirm"]}));
    assert!(matches!(replies.validate(now, |_| true, &push), Err(crate::Rejected::Impossible(_))));
    let ok = request(serde_json::json!({"replies": ["cancel", "confirm", "confirm"], "channels": ["sms"]}));
    let ok = ok.validate(now, |_| true, &push).unwrap();
    assert_eq!(ok.replies, [crate::consent::ReplyAction::Confirm, crate::consent::ReplyAction::Cancel]);
    assert_eq!(ok.category, "general");
    let templated = serde_json::json!({"recipient": {"phone": "+93701234567"}, "channels": ["sms"],
        "template": "appointment-reminder", "variables": {"when": "x"}});
    let t = serde_json::from_value::<NotificationRequest>(templated).unwrap().validate(now, |_| true, &push).unwrap();
    assert_eq!(t.category, "appointment-reminders", "the template's category");
}
