use std::collections::BTreeMap;

use super::*;
use crate::Rejected;
use crate::notification::Channel;

use render_named as render;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn renders_per_locale_and_channel() {
    let v = vars(&[("clinic", "Kabul Family Clinic"), ("when", "10:00"), ("joinUrl", "https://meet/x")]);
    let en = render("appointment-reminder", Some("en-GB"), Channel::Sms, &v).unwrap();
    assert_eq!(en.body, "Kabul Family Clinic: video consultation 10:00. Join: https://meet/x STOP to opt out.");
    assert_eq!(en.subject, None);
    let fa = render("appointment-reminder", Some("fa-AF"), Channel::Email, &v).unwrap();
    assert!(fa.body.contains("10:00") && fa.body.contains("مشاوره"));
    assert!(!fa.body.contains("STOP"), "opting out by SMS is said by SMS only");
    assert!(fa.subject.unwrap().contains("10:00"));
    let ps = render("appointment-cancelled", Some("ps"), Channel::Push, &v).unwrap();
    assert!(ps.body.contains("لغوه") && !ps.body.contains("STOP"));
    // Unknown languages fall back to English; joinUrl is optional; replies when offered.
    let mut offered = vars(&[("clinic", "K"), ("when", "10:00"), ("replies", "confirm,reschedule,cancel")]);
    let de = render("appointment-reminder", Some("de-DE"), Channel::Sms, &offered).unwrap();
    assert_eq!(
        de.body,
        "K: video consultation 10:00. Reply C to confirm, R to reschedule, X to cancel. STOP to opt out."
    );
    offered.remove("replies");
    assert_eq!(
        render("appointment-reminder", None, Channel::Sms, &offered).unwrap().body,
        "K: video consultation 10:00. STOP to opt out."
    );
}

#[test]
fn missing_variables_and_unknown_templates_are_422() {
    let err = render("appointment-reminder", None, Channel::Sms, &BTreeMap::new()).unwrap_err();
    assert_eq!(err, Rejected::Impossible("variables missing for template appointment-reminder: clinic, when".into()));
    assert!(matches!(render("nope", None, Channel::Sms, &BTreeMap::new()), Err(Rejected::Impossible(_))));
}

#[test]
fn hostile_variables_stay_text() {
    let v = vars(&[("clinic", "C"), ("when", "{{ 7*7 }}{% raw %}<script>")]);
    let r = render("appointment-cancelled", None, Channel::Email, &v).unwrap();
    assert_eq!(r.body, "C: your video consultation at {{ 7*7 }}{% raw %}<script> has been cancelled.");
}

fn draft(json: serde_json::Value) -> Result<Template, Rejected> {
    serde_json::from_value::<TemplateDraft>(json).unwrap().check("refill-due", "en")
}

fn medication() -> Template {
    draft(serde_json::json!({
        "category": "medication-reminders",
        "variables": ["drug", "dose"],
        "locales": {
            "en": {"sms": "{{ clinic }}: take {{ dose }} of {{ drug }}.{% if channel == 'sms' %} STOP to opt out.{% endif %}",
                   "push": {"title": "{{ drug|upper }}", "body": "Take {{ dose }}"},
                   "email": {"subject": "{{ drug }}", "text": "Take {{ dose }} of {{ drug }}.", "html": "<p>Take {{ dose }}</p>"}},
            "fa-AF": {"sms": "{{ clinic }}: {{ drug }} {{ dose }}"},
            "de": {"email": {"subject": "{{ drug }}", "text": "Nehmen Sie {{ dose }}."}}
        }
    }))
    .unwrap()
}

#[test]
fn a_clinic_template_has_a_text_per_channel_and_falls_back_by_language_then_default() {
    let t = medication();
    let v = vars(&[("clinic", "K"), ("drug", "metformin"), ("dose", "500 mg")]);
    assert_eq!(
        super::render(&t, Some("en-US"), Channel::Sms, &v).unwrap().body,
        "K: take 500 mg of metformin. STOP to opt out."
    );
    let push = super::render(&t, Some("en"), Channel::Push, &v).unwrap();
    assert_eq!((push.subject.as_deref(), push.body.as_str()), (Some("METFORMIN"), "Take 500 mg"));
    let mail = super::render(&t, None, Channel::Email, &v).unwrap();
    assert_eq!(mail.html.as_deref(), Some("<p>Take 500 mg</p>"));
    // In HTML a value stays text; in the plain parts it is left as it is.
    let hostile = vars(&[("clinic", "K"), ("drug", "x"), ("dose", "<a href=\"https://evil\">1</a>")]);
    let mail = super::render(&t, None, Channel::Email, &hostile).unwrap();
    assert_eq!(
        mail.html.as_deref(),
        Some("<p>Take &lt;a href=&quot;https:&#x2f;&#x2f;evil&quot;&gt;1&lt;&#x2f;a&gt;</p>")
    );
    assert!(mail.body.contains("<a href"));
    // fa-IR finds fa-AF by language; SMS in a locale with only e-mail takes its text.
    assert_eq!(super::render(&t, Some("fa-IR"), Channel::Sms, &v).unwrap().body, "K: metformin 500 mg");
    assert_eq!(super::render(&t, Some("de-AT"), Channel::Sms, &v).unwrap().body, "Nehmen Sie 500 mg.");
    // No match: the clinic's default locale.
    assert_eq!(pick_locale(&t, Some("ps-AF")).0, "en");
    assert_eq!(t.category, "medication-reminders");
    let missing = super::render(&t, None, Channel::Sms, &vars(&[("clinic", "K")])).unwrap_err();
    assert_eq!(missing, Rejected::Impossible("variables missing for template refill-due: dose, drug".into()));
}

#[test]
fn a_template_is_checked_at_save() {
    let with = |sms: &str| {
        draft(serde_json::json!({"category": "refills", "variables": ["drug"], "locales": {"en": {"sms": sms}}}))
    };
    assert!(with("Refill {{ drug }} at {{ clinic }}").is_ok());
    let impossible = |r: Result<Template, Rejected>| matches!(r, Err(Rejected::Impossible(_)));
    assert!(impossible(with("Refill {{ drug }} {{ pharmacy }}")), "undeclared variable");
    assert!(impossible(with("Refill {{ drug ")), "syntax error");
    assert!(impossible(with("{% for c in drug %}{% for d in drug %}{{ c }}{% endfor %}{% endfor %}")), "loops");
    assert!(impossible(with("{%- include 'other' %}")), "include");
    assert!(impossible(with("{% macro m() %}x{% endmacro %}")), "macro");
    assert!(impossible(with("{{ drug|tojson }}")), "a filter outside the sandbox");
    assert!(impossible(with("{{ range(9) }}")), "a function outside the sandbox");
    assert!(matches!(with(&"x".repeat(1_601)), Err(Rejected::Invalid(_))), "too long");
    let no_text =
        draft(serde_json::json!({"category": "refills", "locales": {"en": {"push": {"title": "t", "body": "b"}}}}));
    assert!(impossible(no_text), "a locale needs an sms or e-mail text");
    for bad in [
        serde_json::json!({"category": "refills", "locales": {}}),
        serde_json::json!({"category": "refills", "locales": {"english!": {"sms": "x"}}}),
        serde_json::json!({"category": "refills", "locales": {"en": {"sms": "x"}, "EN": {"sms": "y"}}}),
        serde_json::json!({"category": "refills", "variables": ["clinic"], "locales": {"en": {"sms": "x"}}}),
        serde_json::json!({"category": "refills", "variables": ["a b"], "locales": {"en": {"sms": "x"}}}),
        serde_json::json!({"category": "sms-answers", "locales": {"en": {"sms": "x"}}}),
        serde_json::json!({"category": "refills", "variables": ["a", "a"], "locales": {"en": {"sms": "x"}}}),
    ] {
        assert!(matches!(draft(bad.clone()), Err(Rejected::Invalid(_))), "{bad}");
    }
    let bad_name = serde_json::from_value::<TemplateDraft>(
        serde_json::json!({"category": "refills", "locales": {"en": {"sms": "x"}}}),
    )
    .unwrap()
    .check("Bad Name", "en");
    assert!(bad_name.is_err());
}

#[test]
fn rendering_has_a_bounded_cost() {
    let with = |sms: &str| {
        draft(serde_json::json!({"category": "refills", "variables": ["drug"], "locales": {"en": {"sms": sms}}}))
    };
    // Rejected at save: the sample render runs out of fuel.
    assert!(matches!(with("{{ drug * 100000000 }}"), Err(Rejected::Impossible(m)) if m.contains("fuel")));
    // Saved (short with a one-letter sample), refused at send with a long value: a 422, never a stall.
    let t = with("{{ drug * 2000 }}").unwrap();
    let long = super::render(&t, None, Channel::Sms, &vars(&[("drug", &"y".repeat(1000))]));
    assert!(matches!(long, Err(Rejected::Impossible(_))), "{long:?}");
}
