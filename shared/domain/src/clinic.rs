//! Settings a clinic may have apart from the deployment's defaults.
//!
//! They come from the deployment's configuration as `clinic=value` pairs
//! separated by `;` (e.g. `CLINIC_QUIET_HOURS=c-kabul=22-6;c-night=off`):
//! parsed once at cold start, so a bad entry fails the start by name and a
//! message costs no extra read.

use std::collections::HashMap;
use std::str::FromStr;

use crate::ids::is_valid_external_id;

/// Local hours in which `normal` messages wait: from `start` o'clock up to
/// `end` o'clock (may wrap midnight); equal hours mean none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: u32,
    pub end: u32,
}

impl QuietHours {
    pub const NONE: QuietHours = QuietHours { start: 0, end: 0 };

    pub fn contains(&self, hour: u32) -> bool {
        if self.start > self.end {
            hour >= self.start || hour < self.end
        } else {
            hour >= self.start && hour < self.end
        }
    }
}

impl Default for QuietHours {
    fn default() -> Self {
        QuietHours { start: 21, end: 7 }
    }
}

impl FromStr for QuietHours {
    type Err = String;

    /// `21-7`, or `off`/`none` for none.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("none") {
            return Ok(QuietHours::NONE);
        }
        let bad = || "START-END hours, like 21-7, or off".to_owned();
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let (start, end): (u32, u32) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
        if start > 23 || end > 23 {
            return Err(bad());
        }
        Ok(if start == end { QuietHours::NONE } else { QuietHours { start, end } })
    }
}

/// How long before a consultation its reminders go: `24h,1h,10m` (minutes
/// `m`, hours `h`, days `d`), or `off`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReminderWindows(pub Vec<chrono::Duration>);

impl ReminderWindows {
    /// The label a window goes by in idempotency keys: `10m`, `1h`, `1d`.
    pub fn label(w: chrono::Duration) -> String {
        let m = w.num_minutes();
        if m % 1440 == 0 {
            format!("{}d", m / 1440)
        } else if m % 60 == 0 {
            format!("{}h", m / 60)
        } else {
            format!("{m}m")
        }
    }
}

impl FromStr for ReminderWindows {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("none") {
            return Ok(ReminderWindows(Vec::new()));
        }
        let bad = || "windows like 24h,1h,10m (m, h, d; up to 7 days), or off".to_owned();
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim) {
            // The unit is one ASCII letter; anything else (found by fuzzing:
            // a multi-byte last character) is refused, never split inside.
            let Some(unit) = part.chars().last().filter(char::is_ascii_alphabetic) else { return Err(bad()) };
            let n: i64 = part[..part.len() - 1].parse().map_err(|_| bad())?;
            let per = match unit {
                'm' => 1,
                'h' => 60,
                'd' => 1440,
                _ => return Err(bad()),
            };
            let minutes = n.checked_mul(per).ok_or_else(bad)?;
            if !(1..=7 * 1440).contains(&minutes) {
                return Err(bad());
            }
            out.push(chrono::Duration::minutes(minutes));
        }
        out.sort();
        out.dedup();
        Ok(ReminderWindows(out))
    }
}

/// A clinic's name as patients know it (`CLINIC_NAMES`, like
/// `c-1=Kabul Family Clinic`): SMS name it, so a patient knows who writes
/// and whom a STOP stops. Empty: unnamed (the clinic id stands in).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClinicName(pub String);

impl FromStr for ClinicName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let name = s.trim();
        if name.is_empty() || name.chars().count() > 40 || name.chars().any(char::is_control) {
            return Err("a name of 1 to 40 characters".into());
        }
        Ok(ClinicName(name.to_owned()))
    }
}

/// One setting: the deployment's default and each clinic's own.
#[derive(Debug, Clone, PartialEq)]
pub struct PerClinic<T> {
    pub default: T,
    pub clinics: HashMap<String, T>,
}

impl<T> PerClinic<T> {
    pub fn of(&self, clinic_id: &str) -> &T {
        self.clinics.get(clinic_id).unwrap_or(&self.default)
    }
}

impl<T: FromStr<Err = String>> PerClinic<T> {
    /// `default` plus `clinic=value;clinic=value` (blank: no exceptions).
    /// Errors name the clinic entry at fault, never echo a value.
    pub fn parse(default: T, exceptions: &str) -> Result<Self, String> {
        let mut clinics = HashMap::new();
        for (i, entry) in exceptions.split(';').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let n = i + 1;
            let (clinic, value) = entry.split_once('=').ok_or(format!("entry {n}: CLINIC=VALUE"))?;
            let clinic = clinic.trim();
            if !is_valid_external_id(clinic) {
                return Err(format!("entry {n}: not a clinic id"));
            }
            let value = value.parse().map_err(|e| format!("entry {n}: {e}"))?;
            if clinics.insert(clinic.to_owned(), value).is_some() {
                return Err(format!("entry {n}: clinic given twice"));
            }
        }
        Ok(PerClinic { default, clinics })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_parse_and_wrap_midnight() {
        let q: QuietHours = "21-7".parse().unwrap();
        assert!(q.contains(21) && q.contains(23) && q.contains(0) && q.contains(6));
        assert!(!q.contains(7) && !q.contains(12) && !q.contains(20));
        let day: QuietHours = "12-14".parse().unwrap();
        assert!(day.contains(12) && day.contains(13) && !day.contains(14) && !day.contains(11));
        let off: QuietHours = "off".parse().unwrap();
        assert!((0..24).all(|h| !off.contains(h)));
        assert_eq!("5-5".parse::<QuietHours>().unwrap(), QuietHours::NONE);
        for bad in ["", "evening", "21-25", "24-7", "-1-7", "21"] {
            assert!(bad.parse::<QuietHours>().is_err(), "{bad}");
        }
    }

    #[test]
    fn reminder_windows_parse_and_label() {
        let w: ReminderWindows = "24h, 10m,1h,1h".parse().unwrap();
        let minutes: Vec<i64> = w.0.iter().map(|d| d.num_minutes()).collect();
        assert_eq!(minutes, [10, 60, 1440]);
        let labels: Vec<String> = w.0.iter().map(|d| ReminderWindows::label(*d)).collect();
        assert_eq!(labels, ["10m", "1h", "1d"]);
        assert_eq!("off".parse::<ReminderWindows>().unwrap().0.len(), 0);
        // Found by fuzz/receipt_fields: a multi-byte last character, and a
        // count that overflows when turned into minutes.
        for bad in ["", "10", "10s", "0m", "8d", "h", "1h;2h", "e~~\u{33c}", "1\u{33c}", "99999999999999999d", "-5m"] {
            assert!(bad.parse::<ReminderWindows>().is_err(), "{bad}");
        }
        let per: PerClinic<ReminderWindows> = PerClinic::parse("24h,1h,10m".parse().unwrap(), "c-quick=30m").unwrap();
        assert_eq!(per.of("c-quick").0, [chrono::Duration::minutes(30)]);
    }

    #[test]
    fn per_clinic_overrides_the_default_and_names_bad_entries() {
        let q = PerClinic::parse(QuietHours::default(), " c-kabul=22-6 ; c-night=off ;").unwrap();
        assert_eq!(q.of("c-kabul"), &QuietHours { start: 22, end: 6 });
        assert_eq!(q.of("c-night"), &QuietHours::NONE);
        assert_eq!(q.of("c-other"), &QuietHours::default());
        assert_eq!(PerClinic::parse(QuietHours::default(), "").unwrap().clinics.len(), 0);
        for (bad, why) in [
            ("c1=22-6;c2", "entry 2: CLINIC=VALUE"),
            ("c1=late", "entry 1: START-END"),
            ("c1=1-2;c1=3-4", "entry 2: clinic given twice"),
            ("bad clinic=1-2", "entry 1: not a clinic id"),
        ] {
            let err = PerClinic::parse(QuietHours::default(), bad).unwrap_err();
            assert!(err.starts_with(why), "{bad}: {err}");
        }
    }

    #[test]
    fn clinic_names_are_short_printable_text() {
        let names: PerClinic<ClinicName> = PerClinic::parse(ClinicName::default(), "c-1=Kabul Family Clinic").unwrap();
        assert_eq!(names.of("c-1").0, "Kabul Family Clinic");
        assert_eq!(names.of("c-2"), &ClinicName::default());
        for bad in ["c-1=", "c-1=   ", "c-1=a name far longer than forty characters, surely", "c-1=a\u{7}b"] {
            assert!(PerClinic::<ClinicName>::parse(ClinicName::default(), bad).is_err(), "{bad:?}");
        }
    }
}

/// A clinic's default locale (`CLINIC_LOCALES`): where a recipient whose
/// language a template lacks falls back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultLocale(pub String);

impl Default for DefaultLocale {
    fn default() -> Self {
        Self(crate::templates::DEFAULT_LOCALE.to_owned())
    }
}

impl FromStr for DefaultLocale {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let ok = (2..=35).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok { Ok(Self(s.to_owned())) } else { Err("a locale is a BCP 47 tag like fa-AF".into()) }
    }
}
