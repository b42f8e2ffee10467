//! vcare's built-in templates per locale (en, fa, ps). A clinic's template
//! of the same name shadows one of these.

use std::collections::BTreeMap;

use super::{DEFAULT_LOCALE, EmailText, LocaleText, Template};
use crate::consent::DEFAULT_CATEGORY;

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
    // To a room's clinicians when someone checks in to its waiting room:
    // no name (minimum necessary), the consultation's time.
    (
        "patient-waiting",
        "en",
        "{{ clinic }}: someone is in the waiting room",
        "{{ clinic }}: a participant of your {{ when }} video consultation is in the waiting room.{% if channel == \"sms\" %} STOP to opt out.{% endif %}",
    ),
    (
        "patient-waiting",
        "fa",
        "{{ clinic }}: کسی در اتاق انتظار است",
        "{{ clinic }}: یکی از شرکت‌کنندگان مشاوره تصویری {{ when }} در اتاق انتظار است.{% if channel == \"sms\" %} توقف STOP{% endif %}",
    ),
    (
        "patient-waiting",
        "ps",
        "{{ clinic }}: څوک د انتظار په خونه کې دی",
        "{{ clinic }}: ستاسو د {{ when }} ویډیويي مشورې یو ګډونوال د انتظار په خونه کې دی.{% if channel == \"sms\" %} بندول STOP{% endif %}",
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

/// The category of a built-in template's messages.
pub fn category(name: &str) -> Option<&'static str> {
    match name {
        "appointment-reminder" => Some("appointment-reminders"),
        "appointment-cancelled" => Some("appointment-updates"),
        "consultation-link" => Some("consultation-links"),
        "patient-waiting" => Some("waiting-room"),
        _ => None,
    }
}

pub fn exists(name: &str) -> bool {
    TEMPLATES.iter().any(|t| t.0 == name)
}

/// The built-in `name` as a [`Template`]: the body is the SMS text and the
/// e-mail's, the subject the e-mail's; push borrows the SMS text.
pub fn builtin(name: &str) -> Option<Template> {
    let locales: BTreeMap<String, LocaleText> = TEMPLATES
        .iter()
        .filter(|t| t.0 == name)
        .map(|(_, locale, subject, body)| {
            let email = (!subject.is_empty()).then(|| EmailText {
                subject: (*subject).to_owned(),
                text: (*body).to_owned(),
                html: None,
            });
            ((*locale).to_owned(), LocaleText { sms: Some((*body).to_owned()), push: None, email })
        })
        .collect();
    if locales.is_empty() {
        return None;
    }
    Some(Template {
        name: name.to_owned(),
        version: None,
        category: category(name).unwrap_or(DEFAULT_CATEGORY).to_owned(),
        variables: Vec::new(),
        locales,
        replies: Vec::new(),
        default_locale: DEFAULT_LOCALE.to_owned(),
        created_at: None,
        created_by: None,
    })
}

/// Every built-in's name, once.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&str> = TEMPLATES.iter().map(|t| t.0).collect();
    names.dedup();
    names
}
