//! A recurrence rule (RFC 5545 RRULE) in a time zone, expanded by the
//! `rrule` crate. vcare checks what it accepts (the parts API.md names,
//! occurrences at least [`MIN_SPACING_MINUTES`] apart) and hands the crate a
//! DTSTART it builds itself from an instant, so a start is never ambiguous.
//! Wall-clock times that do not exist on a day fall at the offset before
//! the gap, ambiguous ones at their first instant (RFC 5545 3.3.5): the
//! crate's own behaviour, checked by this module's tests.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use rrule::{RRule, RRuleSet, Unvalidated};

use crate::Rejected;

/// The least time between two occurrences.
pub const MIN_SPACING_MINUTES: i64 = 15;
/// How long a rule text may be.
pub const MAX_RULE_CHARS: usize = 512;
/// How far ahead the spacing check and the first occurrence are looked for.
const HORIZON_DAYS: i64 = 800;
/// How many occurrences the spacing check compares.
const SPACING_SAMPLE: u16 = 1_000;
/// How far before now a new rule may start. The expansion walks from the
/// start (COUNT and INTERVAL count from it), so a start centuries back
/// would be walked hour by hour at every computation: a year bounds it.
pub const MAX_START_AGE_DAYS: i64 = 366;

/// The parts vcare accepts; everything else (BYSECOND, BYWEEKNO,
/// BYYEARDAY, BYEASTER, DTSTART inside the rule...) is a 400.
const PARTS: &[&str] =
    &["FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYHOUR", "BYMINUTE", "BYSETPOS", "WKST"];
const FREQS: &[&str] = &["HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"];

/// A checked rule: it parses, uses only supported parts, yields an
/// occurrence, and its occurrences are far enough apart.
#[derive(Debug, Clone)]
pub struct Recurrence {
    pub rule: String,
    pub timezone: Tz,
    pub start: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    set: RRuleSet,
}

fn invalid(m: impl Into<String>) -> Rejected {
    Rejected::Invalid(m.into())
}

/// The rule's text, its parts checked against [`PARTS`] and [`FREQS`].
fn checked_parts(rule: &str) -> Result<String, Rejected> {
    let rule = rule.trim().strip_prefix("RRULE:").unwrap_or(rule.trim());
    if rule.is_empty() || rule.len() > MAX_RULE_CHARS {
        return Err(invalid(format!("rrule: 1 to {MAX_RULE_CHARS} characters")));
    }
    // RRULE is ASCII; the crate slices its parts by byte (found by
    // fuzz/templates_schedules: a multi-byte BYDAY value made it panic).
    if !rule.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("rrule: printable ASCII, without spaces"));
    }
    let mut seen: Vec<String> = Vec::new();
    for part in rule.split(';') {
        let (name, value) = part.split_once('=').ok_or_else(|| invalid("rrule: parts are NAME=VALUE, split by ;"))?;
        let name = name.trim().to_ascii_uppercase();
        if value.is_empty() || value.split(',').any(str::is_empty) {
            return Err(invalid(format!("rrule: {name} needs a value (no empty list or item)")));
        }
        if !PARTS.contains(&name.as_str()) {
            return Err(invalid(format!("rrule: {name} is not supported (supported: {})", PARTS.join(", "))));
        }
        if seen.contains(&name) {
            return Err(invalid(format!("rrule: {name} is given twice")));
        }
        if name == "FREQ" && !FREQS.contains(&value.trim().to_ascii_uppercase().as_str()) {
            return Err(invalid(format!("rrule: FREQ must be one of {}", FREQS.join(", "))));
        }
        seen.push(name);
    }
    if !seen.iter().any(|n| n == "FREQ") {
        return Err(invalid("rrule: FREQ is required"));
    }
    if seen.iter().any(|n| n == "COUNT") && seen.iter().any(|n| n == "UNTIL") {
        return Err(invalid("rrule: COUNT and UNTIL cannot both be given"));
    }
    Ok(rule.to_ascii_uppercase())
}

/// A time zone by its IANA name.
pub fn timezone(name: &str) -> Result<Tz, Rejected> {
    name.parse::<Tz>().map_err(|_| invalid("timezone: an IANA time zone name like Asia/Kabul"))
}

impl Recurrence {
    /// Checks `rule` in `timezone` from `start` (the rule's DTSTART: parts
    /// the rule leaves out come from its wall-clock time there), ending at
    /// `until` if given.
    pub fn parse(
        rule: &str,
        timezone: Tz,
        start: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Self, Rejected> {
        let text = checked_parts(rule)?;
        if until.is_some_and(|u| u <= start) {
            return Err(invalid("until: must be after start"));
        }
        let parsed: RRule<Unvalidated> =
            text.parse().map_err(|e: rrule::RRuleError| invalid(format!("rrule: {}", first_line(&e.to_string()))))?;
        let dt_start = start.with_timezone(&rrule::Tz::Tz(timezone));
        let set = parsed.build(dt_start).map_err(|e| invalid(format!("rrule: {}", first_line(&e.to_string()))))?;
        let recurrence = Recurrence { rule: text, timezone, start, until, set };
        recurrence.check_spacing()?;
        Ok(recurrence)
    }

    fn check_spacing(&self) -> Result<(), Rejected> {
        let horizon = (self.start + Duration::days(HORIZON_DAYS)).with_timezone(&rrule::Tz::UTC);
        let sample = self.set.clone().before(horizon).all(SPACING_SAMPLE);
        let times: Vec<DateTime<Utc>> = sample.dates.iter().map(|d| d.with_timezone(&Utc)).collect();
        if !times.iter().any(|t| self.until.is_none_or(|u| *t <= u)) {
            return Err(Rejected::Impossible("rrule: the rule yields no occurrence from start (until)".into()));
        }
        let spacing = Duration::minutes(MIN_SPACING_MINUTES);
        if times.windows(2).any(|w| w[1] - w[0] < spacing) {
            return Err(invalid(format!("rrule: occurrences must be at least {MIN_SPACING_MINUTES} minutes apart")));
        }
        Ok(())
    }

    /// Up to `n` occurrences strictly after `after` (and not after `until`).
    pub fn after(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let from = (after.max(self.start - Duration::seconds(1))).with_timezone(&rrule::Tz::UTC);
        let set = self.set.clone().after(from);
        let times = set.all(u16::try_from(n + 1).unwrap_or(u16::MAX)).dates;
        times
            .into_iter()
            .map(|d| d.with_timezone(&Utc))
            .filter(|t| *t > after && *t >= self.start && self.until.is_none_or(|u| *t <= u))
            .take(n)
            .collect()
    }

    /// The first occurrence strictly after `after`, if any is left.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.after(after, 1).into_iter().next()
    }

    /// The first occurrence at or after `at`.
    pub fn first_from(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_after(at - Duration::milliseconds(1))
    }
}

fn first_line(s: &str) -> String {
    // The crate's messages can quote the input; keep them short.
    s.lines().next().unwrap_or("").chars().take(160).collect()
}
