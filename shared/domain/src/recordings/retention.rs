//! How long a clinic keeps its recordings: `RecordingRetentionDays` (the
//! deployment's default) and `ClinicRecordingRetentionDays`
//! (`c-1=90;c-2=3650`, a clinic's own). A ready recording waits in the due
//! index until it expires; the sweep then deletes it unless it is under
//! legal hold (lifting the hold puts it back in the index).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{Recording, RecordingStatus};
use crate::due::{Due, DueKind};

/// A retention of 1 day to 100 years.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub default_days: u32,
    pub clinics: BTreeMap<String, u32>,
}

fn days(s: &str, what: &str) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|d| (1..=MAX_RETENTION_DAYS).contains(d))
        .ok_or_else(|| format!("{what}: a number of days from 1 to {MAX_RETENTION_DAYS}"))
}

impl RetentionPolicy {
    /// The default and the per-clinic list (`<clinic>=<days>`, separated
    /// by `;`); a clinic named twice is refused.
    pub fn parse(default_days: &str, clinics: &str) -> Result<Self, String> {
        let default_days = days(default_days, "RECORDING_RETENTION_DAYS")?;
        let mut out = BTreeMap::new();
        for entry in clinics.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (clinic, d) = entry
                .split_once('=')
                .ok_or("CLINIC_RECORDING_RETENTION_DAYS: entries are <clinic>=<days>, separated by ;")?;
            let clinic = clinic.trim();
            if !crate::ids::is_valid_external_id(clinic) {
                return Err("CLINIC_RECORDING_RETENTION_DAYS: a clinic id is malformed".into());
            }
            if out.insert(clinic.to_owned(), days(d, "CLINIC_RECORDING_RETENTION_DAYS")?).is_some() {
                return Err("CLINIC_RECORDING_RETENTION_DAYS: a clinic is named twice".into());
            }
        }
        Ok(Self { default_days, clinics: out })
    }

    pub fn days(&self, clinic: &str) -> u32 {
        self.clinics.get(clinic).copied().unwrap_or(self.default_days)
    }

    /// When a recording made ready at `ready_at` expires.
    pub fn expires(&self, clinic: &str, ready_at: DateTime<Utc>) -> DateTime<Utc> {
        ready_at + Duration::days(i64::from(self.days(clinic)))
    }
}

/// The due entry that expires a ready recording (none for any other, nor
/// for one under hold); at `now` at the earliest (a hold lifted late).
pub fn expiry_due(recording: &Recording, policy: &RetentionPolicy, now: DateTime<Utc>) -> Option<Due> {
    let ready_at = recording.ready_at?;
    (recording.status == RecordingStatus::Ready && !recording.hold).then(|| Due {
        at: policy.expires(&recording.clinic_id, ready_at).max(now),
        kind: DueKind::RecordingExpiry,
        clinic: recording.clinic_id.clone(),
        id: recording.recording_id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clinics_keep_their_own_number_of_days_else_the_default() {
        let p = RetentionPolicy::parse("30", " c-1=90; c-2 = 3650 ;").unwrap();
        assert_eq!((p.days("c-1"), p.days("c-2"), p.days("c-3")), (90, 3650, 30));
        let at: DateTime<Utc> = "2026-12-01T10:00:00Z".parse().unwrap();
        assert_eq!(p.expires("c-1", at), "2027-03-01T10:00:00Z".parse::<DateTime<Utc>>().unwrap());
        for (d, c) in [
            ("0", ""),
            ("x", ""),
            ("36501", ""),
            ("30", "c-1"),
            ("30", "c-1=0"),
            ("30", "c-1=1;c-1=2"),
            ("30", "c 1=3"),
        ] {
            assert!(RetentionPolicy::parse(d, c).is_err(), "{d} {c}");
        }
    }

    #[test]
    fn only_a_ready_recording_not_under_hold_waits_to_expire() {
        let policy = RetentionPolicy::parse("30", "").unwrap();
        let now: DateTime<Utc> = "2026-12-01T10:00:00Z".parse().unwrap();
        let mut r: Recording = serde_json::from_value(serde_json::json!({
            "recordingId": "rec_1", "clinicId": "c1", "roomId": "rm_1", "status": "ready", "contentType": "video/mp4",
            "sizeBytes": 1, "s3Key": "k", "createdAt": now, "readyAt": now
        }))
        .unwrap();
        let due = expiry_due(&r, &policy, now).unwrap();
        assert_eq!((due.at, due.kind, due.id.as_str()), (now + Duration::days(30), DueKind::RecordingExpiry, "rec_1"));
        assert_eq!(expiry_due(&r, &policy, now + Duration::days(40)).unwrap().at, now + Duration::days(40));
        r.hold = true;
        assert_eq!(expiry_due(&r, &policy, now), None);
        r.hold = false;
        r.status = RecordingStatus::Deleted;
        assert_eq!(expiry_due(&r, &policy, now), None);
    }
}
