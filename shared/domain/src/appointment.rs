//! The appointment events vcare consumes (events/catalogue
//! `appointment.created` / `appointment.cancelled`), read at the edge into
//! what the room rules take.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::notification::{PushToken, Recipient};
use crate::room::{CreateRoom, Participant, ParticipantRole};

pub const CREATED: &str = "appointment.created";
pub const CANCELLED: &str = "appointment.cancelled";

/// A CloudEvents envelope of the appointment events queue.
#[derive(Debug, Clone, Deserialize)]
pub struct AppointmentEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub clinicid: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// How to reach a participant (personal data: sealed when stored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Contact {
    pub phone: Option<String>,
    pub email: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    #[serde(default)]
    pub push_tokens: Vec<PushToken>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppointmentParticipant {
    pub user_id: String,
    pub role: ParticipantRole,
    pub display_name: Option<String>,
    pub contact: Option<Contact>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppointmentCreated {
    pub appointment_id: String,
    /// `video` appointments get a room; others are not vcare's.
    pub kind: String,
    pub scheduled_start: String,
    pub scheduled_end: String,
    pub participants: Vec<AppointmentParticipant>,
    pub lobby: Option<bool>,
    pub max_participants: Option<u32>,
    pub recording: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppointmentCancelled {
    pub appointment_id: String,
    pub reason: Option<String>,
}

impl AppointmentCreated {
    /// The room request this appointment makes (validated by the room rules
    /// like any other).
    pub fn room_request(&self) -> CreateRoom {
        CreateRoom {
            appointment_id: self.appointment_id.clone(),
            scheduled_start: self.scheduled_start.clone(),
            scheduled_end: self.scheduled_end.clone(),
            participants: self
                .participants
                .iter()
                .map(|p| Participant {
                    user_id: p.user_id.clone(),
                    role: p.role,
                    display_name: p.display_name.clone().unwrap_or_else(|| p.role.as_str().to_owned()),
                })
                .collect(),
            lobby: self.lobby,
            max_participants: self.max_participants,
            recording: self.recording,
            provider: None,
        }
    }

    /// Each participant with a way to reach them, as a notification recipient.
    pub fn recipients(&self) -> Vec<Recipient> {
        self.participants
            .iter()
            .filter_map(|p| {
                let c = p.contact.clone()?;
                Some(Recipient {
                    user_id: Some(p.user_id.clone()),
                    phone: c.phone,
                    email: c.email,
                    push_tokens: c.push_tokens,
                    locale: c.locale,
                    timezone: c.timezone,
                })
            })
            .collect()
    }
}

/// A time as a person reads it: local to their zone when known.
pub fn local_when(t: DateTime<Utc>, timezone: Option<&str>) -> String {
    match timezone.and_then(|z| z.parse::<chrono_tz::Tz>().ok()) {
        // The recipient's own time: the zone's name would cost SMS segments.
        Some(tz) => t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
        None => format!("{} UTC", t.format("%Y-%m-%d %H:%M")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_locally() {
        let t = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(local_when(t, Some("Asia/Kabul")), "2026-11-24 14:30");
        assert_eq!(local_when(t, None), "2026-11-24 10:00 UTC");
        assert_eq!(local_when(t, Some("Mars/Olympus")), "2026-11-24 10:00 UTC");
    }
}

/// The due entries of a room's appointment reminders: one per window
/// (`start - window`) not yet a minute past at `now` (the scheduler's
/// granularity; a room made later than a window misses that reminder), with the id
/// `<roomId>#<window label>` the scheduler reads back with
/// [`reminder_of`].
pub fn reminder_dues(
    clinic: &str,
    room_id: &str,
    start: chrono::DateTime<chrono::Utc>,
    windows: &crate::clinic::ReminderWindows,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<crate::due::Due> {
    windows
        .0
        .iter()
        .filter(|w| start - **w > now - chrono::Duration::minutes(1))
        .map(|w| crate::due::Due {
            at: start - *w,
            kind: crate::due::DueKind::Reminder,
            clinic: clinic.to_owned(),
            id: format!("{room_id}#{}", crate::clinic::ReminderWindows::label(*w)),
        })
        .collect()
}

/// The room and window of a reminder's due entry id.
pub fn reminder_of(id: &str) -> Option<(&str, chrono::Duration)> {
    let (room, label) = id.rsplit_once('#')?;
    let windows: crate::clinic::ReminderWindows = label.parse().ok()?;
    Some((room, *windows.0.first()?))
}

#[cfg(test)]
mod reminder_tests {
    use super::*;

    #[test]
    fn a_room_has_one_due_entry_per_window_still_ahead() {
        let start: chrono::DateTime<chrono::Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
        let now: chrono::DateTime<chrono::Utc> = "2026-12-02T09:30:00Z".parse().unwrap();
        let windows: crate::clinic::ReminderWindows = "24h,1h,10m".parse().unwrap();
        let dues = reminder_dues("c", "room_1", start, &windows, now);
        assert_eq!(dues.len(), 1, "the 24h and 1h reminders are past");
        assert_eq!(dues[0].at, start - chrono::Duration::minutes(10));
        assert_eq!(reminder_of(&dues[0].id), Some(("room_1", chrono::Duration::minutes(10))));
        assert_eq!(reminder_of("room_1#1d"), Some(("room_1", chrono::Duration::days(1))));
        assert_eq!(reminder_of("room_1"), None);
    }
}
