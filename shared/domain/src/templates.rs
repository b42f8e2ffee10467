//! Named message templates per locale (en, fa, ps), rendered with minijinja
//! in strict mode: a variable a template uses but the request lacks is a
//! 422 at accept time, never a failed send later. Variables are values, not
//! template source, so hostile input cannot inject template code.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::Rejected;
use crate::notification::Channel;

/// (name, locale, e-mail subject, body). Bodies serve SMS, push and e-mail.
const TEMPLATES: &[(&str, &str, &str, &str)] = &[
    // Every message names the clinic (`clinic`, the deployment's name for
    // it); by SMS it says how to opt out, and the replies it offers
    // (`replies`, set when the request offers any). Written to fit: the fa
    // reminder with a 30-character join-link base and a 19-character clinic
    // name is 2 UCS-2 segments (README "SMS segments").
    (
        "appointment-reminder",
        "en",
        "{{ clinic }}: your video consultation at {{ when }}",
        "{{ clinic }}: video consultation {{ when }}.{% if joinUrl is defined %} Join: {{ joinUrl }}{% endif %}{% if channel == \"sms\" %}{% if replies is defined %} Reply C to confirm, R to reschedule, X to cancel.{% endif %} STOP to opt out.{% endif %}",
    ),
    (
        "appointment-reminder",
        "fa",
        "{{ clinic }}: مشاوره تصویری شما در {{ when }}",
        "{{ clinic }}: مشاوره تصویری {{ when }}.{% if joinUrl is defined %} {{ joinUrl }}{% endif %}{% if channel == \"sms\" %}{% if replies is defined %} تأیید C، تغییر R، لغو X،{% endif %} توقف STOP{% endif %}",
    ),
    (
        "appointment-reminder",
        "ps",
        "{{ clinic }}: ستاسو ویډیويي مشوره په {{ when }}",
        "{{ clinic }}: ویډیويي مشوره {{ when }}.{% if joinUrl is defined %} {{ joinUrl }}{% endif %}{% if channel == \"sms\" %}{% if replies is defined %} تایید C، بدلون R، لغوه X{% endif %} بندول STOP{% endif %}",
    ),
    (
        "appointment-cancelled",
        "en",
        "{{ clinic }}: your video consultation was cancelled",
        "{{ clinic }}: your video consultation at {{ when }} has been cancelled.{% if channel == \"sms\" %} STOP to opt out.{% endif %}",
    ),
    (
        "appointment-cancelled",
        "fa",
        "{{ clinic }}: مشاوره تصویری شما لغو شد",
        "{{ clinic }}: مشاوره تصویری {{ when }} لغو شد.{% if channel == \"sms\" %} توقف STOP{% endif %}",
    ),
    (
        "appointment-cancelled",
        "ps",
        "{{ clinic }}: ستاسو ویډیويي مشوره لغوه شوه",
        "{{ clinic }}: مشوره {{ when }} لغوه شوه.{% if channel == \"sms\" %} بندول STOP{% endif %}",
    ),
    (
        "consultation-link",
        "en",
        "{{ clinic }}: join your video consultation",
        "{{ clinic }}: join your video consultation: {{ joinUrl }}{% if channel == \"sms\" %} STOP to opt out.{% endif %}",
    ),
    (
        "consultation-link",
        "fa",
        "{{ clinic }}: پیوستن به مشاوره تصویری",
        "{{ clinic }}: پیوستن به مشاوره تصویری: {{ joinUrl }}{% if channel == \"sms\" %} توقف STOP{% endif %}",
    ),
    (
        "consultation-link",
        "ps",
        "{{ clinic }}: ویډیويي مشورې ته ننوتل",
        "{{ clinic }}: ویډیويي مشورې ته ننوتل: {{ joinUrl }}{% if channel == \"sms\" %} بندول STOP{% endif %}",
    ),
    // vcare's answers to a patient's own SMS (STOP, START, HELP, replies): SMS only.
    ("sms-stopped", "en", "", "{{ clinic }}: you will get no more SMS from us. Reply START to resubscribe."),
    ("sms-stopped", "fa", "", "{{ clinic }}: دیگر پیامکی از ما نمی‌گیرید. برای عضویت دوباره START بفرستید."),
    ("sms-stopped", "ps", "", "{{ clinic }}: نور به زموږ پیغامونه نه ترلاسه کوئ. د بیا ګډون لپاره START ولیږئ."),
    ("sms-started", "en", "", "{{ clinic }}: you will get SMS from us again. Reply STOP to opt out."),
    ("sms-started", "fa", "", "{{ clinic }}: دوباره از ما پیامک می‌گیرید. برای لغو STOP بفرستید."),
    ("sms-started", "ps", "", "{{ clinic }}: بیا به زموږ پیغامونه ترلاسه کوئ. د لغوه کولو لپاره STOP ولیږئ."),
    (
        "sms-help",
        "en",
        "",
        "{{ clinic }}: appointment and consultation messages. Reply STOP to opt out, START to resubscribe.",
    ),
    ("sms-help", "fa", "", "{{ clinic }}: پیام‌های نوبت و مشاوره. برای لغو STOP و برای عضویت دوباره START بفرستید."),
    ("sms-help", "ps", "", "{{ clinic }}: د نوبت او مشورې پیغامونه. د لغوه لپاره STOP، د بیا ګډون لپاره START ولیږئ."),
    ("reply-confirmed", "en", "", "{{ clinic }}: thank you, your appointment is confirmed."),
    ("reply-confirmed", "fa", "", "{{ clinic }}: سپاس، نوبت شما تأیید شد."),
    ("reply-confirmed", "ps", "", "{{ clinic }}: مننه، ستاسو نوبت تایید شو."),
    ("reply-reschedule", "en", "", "{{ clinic }}: thank you, we will contact you to find a new time."),
    ("reply-reschedule", "fa", "", "{{ clinic }}: سپاس، برای زمان تازه با شما تماس می‌گیریم."),
    ("reply-reschedule", "ps", "", "{{ clinic }}: مننه، د نوي وخت لپاره به درسره اړیکه ونیسو."),
    ("reply-cancel", "en", "", "{{ clinic }}: thank you, we have your request to cancel and will confirm it."),
    ("reply-cancel", "fa", "", "{{ clinic }}: سپاس، درخواست لغو شما رسید و آن را تأیید می‌کنیم."),
    ("reply-cancel", "ps", "", "{{ clinic }}: مننه، ستاسو د لغوه غوښتنه ترلاسه شوه او تایید به یې کړو."),
    ("reply-closed", "en", "", "{{ clinic }}: this consultation was cancelled or has ended; nothing was changed."),
    ("reply-closed", "fa", "", "{{ clinic }}: این مشاوره لغو شده یا پایان یافته است؛ چیزی تغییر نکرد."),
    ("reply-closed", "ps", "", "{{ clinic }}: دا مشوره لغوه شوې یا پای ته رسېدلې؛ هېڅ نه دی بدل شوی."),
];

pub const DEFAULT_LOCALE: &str = "en";

/// A message ready for a channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rendered {
    pub subject: Option<String>,
    pub body: String,
}

/// The template's language for a recipient locale: `fa-AF` → `fa`; an
/// unknown language falls back to English.
pub fn language(locale: Option<&str>) -> &'static str {
    let lang = locale.and_then(|l| l.split('-').next()).unwrap_or(DEFAULT_LOCALE).to_ascii_lowercase();
    TEMPLATES.iter().map(|t| t.1).find(|l| *l == lang).unwrap_or(DEFAULT_LOCALE)
}

/// The category of a built-in template's messages.
pub fn category(name: &str) -> Option<&'static str> {
    match name {
        "appointment-reminder" => Some("appointment-reminders"),
        "appointment-cancelled" => Some("appointment-updates"),
        "consultation-link" => Some("consultation-links"),
        _ => None,
    }
}

pub fn exists(name: &str) -> bool {
    TEMPLATES.iter().any(|t| t.0 == name)
}

/// Renders template `name` for `locale` and `channel` (e-mail gets the
/// subject). Unknown template or missing variables: 422.
pub fn render(
    name: &str,
    locale: Option<&str>,
    channel: Channel,
    variables: &BTreeMap<String, String>,
) -> Result<Rendered, Rejected> {
    let lang = language(locale);
    let (_, _, subject, body) = TEMPLATES
        .iter()
        .find(|t| t.0 == name && t.1 == lang)
        .or_else(|| TEMPLATES.iter().find(|t| t.0 == name && t.1 == DEFAULT_LOCALE))
        .ok_or_else(|| Rejected::Impossible(format!("template: no template named {name}")))?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let sources = [("subject", *subject), ("body", *body)];
    let mut missing: Vec<String> = Vec::new();
    for (id, source) in sources {
        env.add_template(id, source).map_err(|_| Rejected::Impossible(format!("template {name} is broken")))?;
        let template = env.get_template(id).map_err(|_| Rejected::Impossible(format!("template {name} is broken")))?;
        for var in template.undeclared_variables(false) {
            // `joinUrl` is optional where the template tests `is defined`;
            // `channel` is the one being rendered.
            let optional = source.contains(&format!("{var} is defined")) || var == "channel";
            if !optional && !variables.contains_key(&var) && !missing.contains(&var) {
                missing.push(var);
            }
        }
    }
    if !missing.is_empty() {
        missing.sort();
        return Err(Rejected::Impossible(format!("variables missing for template {name}: {}", missing.join(", "))));
    }
    let mut values: BTreeMap<String, Value> =
        variables.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
    values.insert("channel".to_owned(), Value::from(channel.as_str()));
    let context = Value::from(values);
    let run = |id: &str| {
        env.get_template(id)
            .and_then(|t| t.render(context.clone()))
            .map_err(|e| Rejected::Impossible(format!("template {name} cannot be rendered: {}", e.kind())))
    };
    Ok(Rendered { subject: (channel == Channel::Email).then(|| run("subject")).transpose()?, body: run("body")? })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            err,
            Rejected::Impossible("variables missing for template appointment-reminder: clinic, when".into())
        );
        assert!(matches!(render("nope", None, Channel::Sms, &BTreeMap::new()), Err(Rejected::Impossible(_))));
    }

    #[test]
    fn hostile_variables_stay_text() {
        let v = vars(&[("clinic", "C"), ("when", "{{ 7*7 }}{% raw %}<script>")]);
        let r = render("appointment-cancelled", None, Channel::Email, &v).unwrap();
        assert_eq!(r.body, "C: your video consultation at {{ 7*7 }}{% raw %}<script> has been cancelled.");
    }
}
