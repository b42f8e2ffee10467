use chrono::{TimeZone, Utc};

use super::*;
use crate::notification::Channel;

fn update(json: serde_json::Value) -> PreferencesUpdate {
    serde_json::from_value(json).unwrap()
}

#[test]
fn preferences_allow_what_is_not_turned_off() {
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    let u = update(serde_json::json!({"channels": {"sms": false}, "categories": {"general": {"email": false}}}));
    u.validate().unwrap();
    let (p, history) = apply(&Preferences::default(), &u, ConsentSource::Api, "u-1", now);
    assert!(!p.allows(Channel::Sms, "appointment-reminders"));
    assert!(p.allows(Channel::Email, "appointment-reminders"));
    assert!(!p.allows(Channel::Email, "general"));
    assert!(p.allows(Channel::Push, "general"));
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|e| !e.granted && e.source == ConsentSource::Api && e.by == "u-1"));
    // The same again changes nothing in the history.
    let (_, again) = apply(&p, &u, ConsentSource::Api, "u-1", now);
    assert!(again.is_empty());
    let view = p.view("u-1");
    assert_eq!(view["channels"], serde_json::json!({"sms": false, "email": true, "push": true}));
}

#[test]
fn preference_bodies_with_unknown_members_are_refused() {
    for bad in [
        serde_json::json!({"channels": {"fax": false}}),
        serde_json::json!({"colour": "blue"}),
        serde_json::json!({"channels": {"sms": "no"}}),
    ] {
        assert!(serde_json::from_value::<PreferencesUpdate>(bad.clone()).is_err(), "{bad}");
    }
    for bad in [
        serde_json::json!({"categories": {"lottery": {"sms": false}}}),
        serde_json::json!({"timezone": "Mars/Olympus"}),
        serde_json::json!({"quietHours": "late"}),
        serde_json::json!({"locale": "not a tag"}),
    ] {
        assert!(update(bad.clone()).validate().is_err(), "{bad}");
    }
    // null clears; a GET body can be put back.
    let u = update(serde_json::json!({"timezone": null, "userId": "u-1", "updatedAt": null}));
    u.validate().unwrap();
    assert_eq!(u.timezone, Some(None));
}

#[test]
fn the_gate_closes_suppressed_and_opted_out_channels_and_carries_personal_quiet_hours() {
    let mut p = Preferences::default();
    p.channels.insert(Channel::Push, false);
    p.quiet_hours = Some("22-6".into());
    p.timezone = Some("Asia/Kabul".into());
    let all = [Channel::Sms, Channel::Push, Channel::Email];
    let g = gate(Some(&p), "general", &all, &[Channel::Sms, Channel::Push]);
    assert_eq!(g.closed(Channel::Sms), Some(SkipReason::Suppressed));
    assert_eq!(g.closed(Channel::Push), Some(SkipReason::Suppressed));
    assert_eq!(g.closed(Channel::Email), None);
    assert_eq!(g.quiet_hours, Some(QuietHours { start: 22, end: 6 }));
    let g = gate(Some(&p), "general", &all, &[]);
    assert_eq!(g.closed, vec![(Channel::Push, SkipReason::OptedOut)]);
    assert_eq!(gate(None, "general", &all, &[]), Gate::open());
}

#[test]
fn keywords_are_the_whole_message_in_any_case() {
    let none = ClinicWords::default();
    for stop in ["STOP", " stop ", "Unsubscribe", "CANCEL", "end.", "OptOut", "revoke", "STOPALL", "quit"] {
        assert_eq!(classify(stop, &none), Said::Keyword { keyword: Keyword::Stop, locale: None }, "{stop}");
    }
    for start in ["START", "unstop"] {
        assert_eq!(classify(start, &none), Said::Keyword { keyword: Keyword::Start, locale: None });
    }
    assert_eq!(classify("info", &none), Said::Keyword { keyword: Keyword::Help, locale: None });
    assert_eq!(classify("c", &none), Said::Reply { action: ReplyAction::Confirm, locale: None });
    assert_eq!(classify("2", &none), Said::Reply { action: ReplyAction::Reschedule, locale: None });
    assert_eq!(classify("X", &none), Said::Reply { action: ReplyAction::Cancel, locale: None });
    for text in ["please stop", "stop it", "", "cc", "I will come"] {
        assert_eq!(classify(text, &none), Said::Text, "{text}");
    }
}

#[test]
fn a_clinic_adds_words_per_locale() {
    let words: ClinicWords = "fa/stop:لغو|توقف, fa/confirm:بله".parse().unwrap();
    assert_eq!(classify(" لغو ", &words), Said::Keyword { keyword: Keyword::Stop, locale: Some("fa".into()) });
    assert_eq!(classify("بله", &words), Said::Reply { action: ReplyAction::Confirm, locale: Some("fa".into()) });
    assert_eq!(classify("STOP", &words), Said::Keyword { keyword: Keyword::Stop, locale: None });
    for bad in ["stop:x", "fa/jump:x", "not a tag/stop:x", "fa/stop"] {
        assert!(bad.parse::<ClinicWords>().is_err(), "{bad}");
    }
}
