//! Whether a consultation may be recorded (API.md "Recordings and
//! dial-in"): each listed participant says yes or no for themself, and a
//! recording room may be recorded only while every listed patient has said
//! yes. A no, or a yes taken back, closes it again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::consent::{ConsentEntry, ConsentSource};
use crate::room::{ParticipantRole, Room};

/// The consent history's category for recording consents.
pub const RECORDING_CATEGORY: &str = "recording";

/// One participant's answer, the newest only (the consent history keeps
/// every one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingConsent {
    pub user_id: String,
    pub granted: bool,
    pub at: DateTime<Utc>,
}

/// The body of `POST .../rooms/{roomId}/consent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentRequest {
    pub recording: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentRefusal {
    /// Not a listed participant (404: the room is not theirs).
    NotListed,
    /// The room has ended or was cancelled (409).
    Closed,
}

impl Room {
    pub fn recording_consent(&self, user_id: &str) -> Option<&RecordingConsent> {
        self.recording_consents.iter().find(|c| c.user_id == user_id)
    }

    /// A recording room whose every listed patient said yes. A room without
    /// recording is never recorded, whatever anyone said.
    pub fn may_record(&self) -> bool {
        self.recording
            && self
                .participants
                .iter()
                .filter(|p| p.role == ParticipantRole::Patient)
                .all(|p| self.recording_consent(&p.user_id).is_some_and(|c| c.granted))
    }

    /// The room with `user_id`'s answer, or `None` when it already says so
    /// (a repeat changes nothing and adds no history line).
    pub fn with_recording_consent(
        &self,
        user_id: &str,
        granted: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Room>, ConsentRefusal> {
        if self.participant(user_id).is_none() {
            return Err(ConsentRefusal::NotListed);
        }
        if !self.status.is_open() {
            return Err(ConsentRefusal::Closed);
        }
        if self.recording_consent(user_id).is_some_and(|c| c.granted == granted) {
            return Ok(None);
        }
        let mut next = self.clone();
        next.recording_consents.retain(|c| c.user_id != user_id);
        next.recording_consents.push(RecordingConsent { user_id: user_id.to_owned(), granted, at: now });
        Ok(Some(next))
    }
}

/// The consent history line a recording answer leaves (no channel: it is
/// not about messages).
pub fn consent_entry(user_id: &str, granted: bool, now: DateTime<Utc>) -> ConsentEntry {
    ConsentEntry {
        at: now,
        channel: None,
        category: Some(RECORDING_CATEGORY.to_owned()),
        granted,
        source: ConsentSource::Api,
        by: user_id.to_owned(),
        reason: None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::room::CreateRoom;

    fn room(recording: bool) -> Room {
        let body = json!({
            "appointmentId": "apt-1", "scheduledStart": "2026-11-23T10:00:00Z", "scheduledEnd": "2026-11-23T10:30:00Z",
            "recording": recording,
            "participants": [{"userId": "u-doc", "role": "doctor", "displayName": "Dr. Amini"},
                             {"userId": "u-pat", "role": "patient", "displayName": "Zahra"},
                             {"userId": "u-pat2", "role": "patient", "displayName": "Omid"},
                             {"userId": "u-int", "role": "interpreter", "displayName": "Ali"}]
        });
        let plan = serde_json::from_value::<CreateRoom>(body).unwrap().validate().unwrap();
        plan.into_room("c1", "rm_1".into(), "vc-1".into(), Default::default(), now())
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 50, 0).unwrap()
    }

    fn say(room: &Room, user: &str, yes: bool) -> Room {
        room.with_recording_consent(user, yes, now()).unwrap().unwrap_or_else(|| room.clone())
    }

    #[test]
    fn every_listed_patient_must_say_yes() {
        let r = room(true);
        assert!(!r.may_record(), "nobody said anything");
        let r = say(&r, "u-pat", true);
        assert!(!r.may_record(), "one patient of two");
        let r = say(&r, "u-doc", false);
        let r = say(&r, "u-int", false);
        assert!(!r.may_record());
        let r = say(&r, "u-pat2", true);
        assert!(r.may_record(), "every patient said yes; the others' answers do not gate");
        let r = say(&r, "u-pat", false);
        assert!(!r.may_record(), "a yes taken back closes it");
        assert_eq!(r.recording_consents.iter().filter(|c| c.user_id == "u-pat").count(), 1, "the newest only");
    }

    #[test]
    fn a_room_without_recording_is_never_recorded() {
        let r = say(&say(&room(false), "u-pat", true), "u-pat2", true);
        assert!(!r.may_record());
    }

    #[test]
    fn repeats_change_nothing_and_strangers_and_closed_rooms_are_refused() {
        let r = say(&room(true), "u-pat", true);
        assert_eq!(r.with_recording_consent("u-pat", true, now()), Ok(None));
        assert_eq!(r.with_recording_consent("u-x", true, now()), Err(ConsentRefusal::NotListed));
        let mut ended = r.clone();
        ended.status = crate::room::RoomStatus::Ended;
        assert_eq!(ended.with_recording_consent("u-pat", false, now()), Err(ConsentRefusal::Closed));
    }

    #[test]
    fn the_history_line_has_the_recording_category_and_no_channel() {
        let e = consent_entry("u-pat", true, now());
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["category"], "recording");
        assert!(v.get("channel").is_none(), "{v}");
        assert_eq!(v["source"], "api");
    }
}
