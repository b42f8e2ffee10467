//! Clinic templates and schedules from outside: PUT .../templates bodies
//! (the save check, then a render of every locale and channel with the
//! declared variables set, which must stay within its fuel and size), and
//! POST .../schedules bodies and bare RRULE texts (the rule checks and
//! expansion: occurrences in order, at least 15 minutes apart, never
//! before start).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use vcare_domain::notification::Channel;
use vcare_domain::schedule::{MIN_SPACING_MINUTES, Recurrence, ScheduleRequest, timezone};
use vcare_domain::templates::{TemplateDraft, render};

fn start() -> chrono::DateTime<chrono::Utc> {
    "2026-12-01T08:00:00Z".parse().unwrap()
}

fn occurrences_hold(r: &Recurrence) {
    let times = r.after(r.start - chrono::Duration::seconds(1), 50);
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= chrono::Duration::minutes(MIN_SPACING_MINUTES), "{:?}", r.rule);
    }
    assert!(times.iter().all(|t| *t >= r.start));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(draft) = serde_json::from_slice::<TemplateDraft>(data)
        && let Ok(template) = draft.check("fuzzed", "en")
    {
        let variables: BTreeMap<String, String> =
            template.variables.iter().map(|v| (v.clone(), "value".to_owned())).collect();
        for locale in template.locales.keys() {
            for channel in [Channel::Sms, Channel::Push, Channel::Email] {
                if let Ok(r) = render(&template, Some(locale), channel, &variables) {
                    assert!(r.body.chars().count() <= 60_000);
                }
            }
        }
    }
    if let Ok(request) = serde_json::from_slice::<ScheduleRequest>(data)
        && let Ok(new) = request.parse(start())
    {
        occurrences_hold(&new.recurrence);
    }
    if let Ok(rule) = std::str::from_utf8(data)
        && let Ok(r) = Recurrence::parse(rule, timezone("America/New_York").unwrap(), start(), None)
    {
        occurrences_hold(&r);
    }
});
