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
    (
        "appointment-reminder",
        "en",
        "Your video consultation at {{ when }}",
        "Reminder: your video consultation is at {{ when }}.{% if joinUrl is defined %} Join: {{ joinUrl }}{% endif %}",
    ),
    (
        "appointment-reminder",
        "fa",
        "مشاوره تصویری شما در {{ when }}",
        "یادآوری: مشاوره تصویری شما در {{ when }} است.{% if joinUrl is defined %} پیوند ورود: {{ joinUrl }}{% endif %}",
    ),
    (
        "appointment-reminder",
        "ps",
        "ستاسو ویډیويي مشوره په {{ when }}",
        "یادونه: ستاسو ویډیويي مشوره په {{ when }} ده.{% if joinUrl is defined %} د ننوتلو لینک: {{ joinUrl }}{% endif %}",
    ),
    (
        "appointment-cancelled",
        "en",
        "Your video consultation was cancelled",
        "Your video consultation at {{ when }} has been cancelled.",
    ),
    ("appointment-cancelled", "fa", "مشاوره تصویری شما لغو شد", "مشاوره تصویری شما در {{ when }} لغو شد."),
    ("appointment-cancelled", "ps", "ستاسو ویډیويي مشوره لغوه شوه", "ستاسو ویډیويي مشوره په {{ when }} لغوه شوه."),
    ("consultation-link", "en", "Join your video consultation", "Join your video consultation: {{ joinUrl }}"),
    ("consultation-link", "fa", "پیوستن به مشاوره تصویری", "برای پیوستن به مشاوره تصویری: {{ joinUrl }}"),
    ("consultation-link", "ps", "ویډیويي مشورې ته ننوتل", "ویډیويي مشورې ته د ننوتلو لپاره: {{ joinUrl }}"),
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
            // `joinUrl` is optional where the template tests `is defined`.
            let optional = source.contains(&format!("{var} is defined"));
            if !optional && !variables.contains_key(&var) && !missing.contains(&var) {
                missing.push(var);
            }
        }
    }
    if !missing.is_empty() {
        missing.sort();
        return Err(Rejected::Impossible(format!("variables missing for template {name}: {}", missing.join(", "))));
    }
    let context =
        Value::from(variables.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<BTreeMap<_, _>>());
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
        let v = vars(&[("when", "10:00"), ("joinUrl", "https://meet/x")]);
        let en = render("appointment-reminder", Some("en-GB"), Channel::Sms, &v).unwrap();
        assert_eq!(en.body, "Reminder: your video consultation is at 10:00. Join: https://meet/x");
        assert_eq!(en.subject, None);
        let fa = render("appointment-reminder", Some("fa-AF"), Channel::Email, &v).unwrap();
        assert!(fa.body.contains("10:00") && fa.body.starts_with("یادآوری"));
        assert!(fa.subject.unwrap().contains("10:00"));
        let ps = render("appointment-cancelled", Some("ps"), Channel::Push, &v).unwrap();
        assert!(ps.body.contains("لغوه"));
        // Unknown languages fall back to English; joinUrl is optional.
        let de = render("appointment-reminder", Some("de-DE"), Channel::Sms, &vars(&[("when", "10:00")])).unwrap();
        assert_eq!(de.body, "Reminder: your video consultation is at 10:00.");
    }

    #[test]
    fn missing_variables_and_unknown_templates_are_422() {
        let err = render("appointment-reminder", None, Channel::Sms, &BTreeMap::new()).unwrap_err();
        assert_eq!(err, Rejected::Impossible("variables missing for template appointment-reminder: when".into()));
        assert!(matches!(render("nope", None, Channel::Sms, &BTreeMap::new()), Err(Rejected::Impossible(_))));
    }

    #[test]
    fn hostile_variables_stay_text() {
        let v = vars(&[("when", "{{ 7*7 }}{% raw %}<script>")]);
        let r = render("appointment-cancelled", None, Channel::Sms, &v).unwrap();
        assert_eq!(r.body, "Your video consultation at {{ 7*7 }}{% raw %}<script> has been cancelled.");
    }
}
