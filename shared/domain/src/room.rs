//! Consultation rooms: what a valid one is, how its status may move, who may
//! see or act on it, and when its participants may join.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::Rejected;
use crate::ids::is_valid_external_id;
use crate::video::ProviderKind;

pub const MAX_PARTICIPANTS_IN_REQUEST: usize = 50;
pub const MAX_ROOM_CAPACITY: u32 = 100;
pub const MAX_CONSULTATION: Duration = Duration::hours(8);
const MAX_DISPLAY_NAME_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParticipantRole {
    Doctor,
    Nurse,
    Patient,
    Interpreter,
}

impl ParticipantRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Doctor => "doctor",
            Self::Nurse => "nurse",
            Self::Patient => "patient",
            Self::Interpreter => "interpreter",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub user_id: String,
    pub role: ParticipantRole,
    pub display_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomStatus {
    Scheduled,
    Active,
    Ended,
    Cancelled,
}

impl RoomStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Active => "active",
            Self::Ended => "ended",
            Self::Cancelled => "cancelled",
        }
    }

    /// scheduled → active → ended; scheduled/active → cancelled; and a
    /// scheduled room may end directly (ended before anyone joined). Nothing
    /// leaves ended or cancelled.
    pub fn can_become(self, next: Self) -> bool {
        use RoomStatus::*;
        matches!((self, next), (Scheduled, Active) | (Scheduled | Active, Ended) | (Scheduled | Active, Cancelled))
    }

    pub fn is_open(self) -> bool {
        matches!(self, Self::Scheduled | Self::Active)
    }
}

/// A room as stored and as API.md shows it: its identity and state around
/// the [`RoomPlan`] it was created with (whose fields it reads as its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub room_id: String,
    pub clinic_id: String,
    /// The provider's room name (Jitsi's conference, LiveKit's room).
    pub jitsi_room: String,
    pub status: RoomStatus,
    /// Where the consultation runs; rooms from before the choice are Jitsi's.
    #[serde(default)]
    pub provider: ProviderKind,
    #[serde(flatten)]
    pub plan: RoomPlan,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub duration_seconds: i64,
    /// The provider's room was made (LiveKit's CreateRoom, before the first
    /// token). Not shown by the API.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prepared: bool,
    /// The waiting room (`crate::lobby`): who waits, who was let in. Not
    /// shown by the room's API view.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<crate::lobby::Waiting>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admitted: Vec<crate::lobby::Admission>,
    /// Each participant's newest answer to recording (`crate::recording`).
    /// The API shows only whether the room may be recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recording_consents: Vec<crate::recording::RecordingConsent>,
    /// The PIN Jigasi callers enter (`crate::dial_in`), for Jitsi rooms of
    /// clinics with dial-in numbers; shown with a token, not by the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dial_in_pin: Option<u64>,
}

impl std::ops::Deref for Room {
    type Target = RoomPlan;

    fn deref(&self) -> &RoomPlan {
        &self.plan
    }
}

/// The body of `POST /v1/virtual-care/rooms`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRoom {
    pub appointment_id: String,
    pub scheduled_start: String,
    pub scheduled_end: String,
    pub participants: Vec<Participant>,
    #[serde(default)]
    pub lobby: Option<bool>,
    #[serde(default)]
    pub max_participants: Option<u32>,
    #[serde(default)]
    pub recording: Option<bool>,
    /// Absent: the clinic's provider.
    #[serde(default)]
    pub provider: Option<ProviderKind>,
}

/// What a room is planned as: a room request that passed every rule, and
/// the part of a [`Room`] that never changes after it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomPlan {
    pub appointment_id: String,
    pub scheduled_start: DateTime<Utc>,
    pub scheduled_end: DateTime<Utc>,
    pub participants: Vec<Participant>,
    pub lobby: bool,
    pub max_participants: u32,
    pub recording: bool,
}

pub fn parse_time(field: &str, raw: &str) -> Result<DateTime<Utc>, Rejected> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Rejected::Invalid(format!("{field}: not an RFC 3339 date-time")))
}

impl CreateRoom {
    pub fn validate(self) -> Result<RoomPlan, Rejected> {
        use Rejected::{Impossible, Invalid};
        if !is_valid_external_id(&self.appointment_id) {
            return Err(Invalid("appointmentId: 1 to 128 of A-Z a-z 0-9 . _ : @ -".into()));
        }
        let start = parse_time("scheduledStart", &self.scheduled_start)?;
        let end = parse_time("scheduledEnd", &self.scheduled_end)?;
        if end <= start {
            return Err(Impossible("scheduledEnd must be after scheduledStart".into()));
        }
        if end - start > MAX_CONSULTATION {
            return Err(Impossible("a consultation lasts at most 8 hours".into()));
        }
        let n = self.participants.len();
        if n == 0 || n > MAX_PARTICIPANTS_IN_REQUEST {
            return Err(Invalid(format!("participants: 1 to {MAX_PARTICIPANTS_IN_REQUEST}")));
        }
        for (i, p) in self.participants.iter().enumerate() {
            if !is_valid_external_id(&p.user_id) {
                return Err(Invalid(format!("participants[{i}].userId: 1 to 128 of A-Z a-z 0-9 . _ : @ -")));
            }
            let chars = p.display_name.chars().count();
            if chars == 0 || chars > MAX_DISPLAY_NAME_CHARS || p.display_name.trim().is_empty() {
                return Err(Invalid(format!(
                    "participants[{i}].displayName: 1 to {MAX_DISPLAY_NAME_CHARS} characters"
                )));
            }
            if p.display_name.chars().any(char::is_control) {
                return Err(Invalid(format!("participants[{i}].displayName: no control characters")));
            }
            if self.participants[..i].iter().any(|q| q.user_id == p.user_id) {
                return Err(Impossible(format!("participants[{i}].userId appears twice")));
            }
        }
        if !self.participants.iter().any(|p| p.role == ParticipantRole::Doctor) {
            return Err(Impossible("a consultation needs at least one doctor".into()));
        }
        let max_participants = self.max_participants.unwrap_or(10);
        if !(2..=MAX_ROOM_CAPACITY).contains(&max_participants) {
            return Err(Invalid(format!("maxParticipants: 2 to {MAX_ROOM_CAPACITY}")));
        }
        if (max_participants as usize) < n {
            return Err(Impossible("maxParticipants is less than the number of participants".into()));
        }
        Ok(RoomPlan {
            appointment_id: self.appointment_id,
            scheduled_start: start,
            scheduled_end: end,
            participants: self.participants,
            lobby: self.lobby.unwrap_or(true),
            max_participants,
            recording: self.recording.unwrap_or(false),
        })
    }
}

impl RoomPlan {
    /// A stable fingerprint of the request, to tell a replay (same body) from
    /// a conflicting request (another body) for the same appointment.
    pub fn fingerprint(&self) -> String {
        crate::digest::sha256_hex(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// The fingerprint with the provider the request named, if it named
    /// one (a request that names none keeps the fingerprint it always had).
    pub fn fingerprint_with(&self, requested: Option<ProviderKind>) -> String {
        match requested {
            None => self.fingerprint(),
            Some(p) => crate::digest::sha256_hex(format!("{}:{}", self.fingerprint(), p.as_str()).as_bytes()),
        }
    }

    pub fn into_room(
        self,
        clinic_id: &str,
        room_id: String,
        jitsi_room: String,
        provider: ProviderKind,
        now: DateTime<Utc>,
    ) -> Room {
        Room {
            room_id,
            clinic_id: clinic_id.to_owned(),
            jitsi_room,
            status: RoomStatus::Scheduled,
            provider,
            plan: self,
            created_at: now,
            started_at: None,
            ended_at: None,
            duration_seconds: 0,
            prepared: false,
            waiting: vec![],
            admitted: vec![],
            recording_consents: vec![],
            dial_in_pin: None,
        }
    }
}

/// When participants may be in the room: from `join_window` before the start
/// to `grace` after the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinPolicy {
    pub join_window: Duration,
    pub grace: Duration,
}

impl Default for JoinPolicy {
    fn default() -> Self {
        Self { join_window: Duration::minutes(15), grace: Duration::minutes(30) }
    }
}

impl JoinPolicy {
    pub fn opens(&self, room: &Room) -> DateTime<Utc> {
        room.scheduled_start - self.join_window
    }

    pub fn closes(&self, room: &Room) -> DateTime<Utc> {
        room.scheduled_end + self.grace
    }
}

/// Why someone may not join now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotJoinable {
    Closed(RoomStatus),
    TooEarly { opens: DateTime<Utc> },
    TooLate,
}

impl Room {
    pub fn participant(&self, user_id: &str) -> Option<&Participant> {
        self.participants.iter().find(|p| p.user_id == user_id)
    }

    pub fn joinable(&self, policy: &JoinPolicy, now: DateTime<Utc>) -> Result<(), NotJoinable> {
        if !self.status.is_open() {
            return Err(NotJoinable::Closed(self.status));
        }
        let opens = policy.opens(self);
        if now < opens {
            return Err(NotJoinable::TooEarly { opens });
        }
        if now >= policy.closes(self) {
            return Err(NotJoinable::TooLate);
        }
        Ok(())
    }
}

/// How a caller stands to a room of their clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Listed in the room, with this role.
    Participant(ParticipantRole),
    /// Not listed, but clinic staff (doctor, nurse, clinic-admin) or a service.
    Staff,
    /// Neither: the room does not exist for them (404).
    Stranger,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> serde_json::Value {
        json!({
            "appointmentId": "apt-1", "scheduledStart": "2026-11-23T10:00:00Z", "scheduledEnd": "2026-11-23T10:30:00Z",
            "participants": [{"userId": "u-doc", "role": "doctor", "displayName": "Dr. Amini"},
                             {"userId": "u-pat", "role": "patient", "displayName": "Zahra"}]
        })
    }

    fn validate(v: serde_json::Value) -> Result<RoomPlan, Rejected> {
        serde_json::from_value::<CreateRoom>(v).expect("shape").validate()
    }

    #[test]
    fn a_valid_request_gets_defaults() {
        let room = validate(body()).unwrap();
        assert!(room.lobby);
        assert!(!room.recording);
        assert_eq!(room.max_participants, 10);
        assert_eq!(room.fingerprint(), validate(body()).unwrap().fingerprint());
        let mut other = body();
        other["recording"] = json!(true);
        assert_ne!(room.fingerprint(), validate(other).unwrap().fingerprint());
    }

    #[test]
    fn every_rule_is_enforced() {
        type Change = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Change, bool)> = vec![
            ("end before start", Box::new(|b| b["scheduledEnd"] = json!("2026-11-23T09:00:00Z")), true),
            ("end equals start", Box::new(|b| b["scheduledEnd"] = json!("2026-11-23T10:00:00Z")), true),
            ("over 8 hours", Box::new(|b| b["scheduledEnd"] = json!("2026-11-23T18:00:01Z")), true),
            ("bad time", Box::new(|b| b["scheduledStart"] = json!("tomorrow")), false),
            ("bad appointment id", Box::new(|b| b["appointmentId"] = json!("a b")), false),
            ("no participants", Box::new(|b| b["participants"] = json!([])), false),
            ("no doctor", Box::new(|b| b["participants"][0]["role"] = json!("nurse")), true),
            ("duplicate user", Box::new(|b| b["participants"][1]["userId"] = json!("u-doc")), true),
            ("empty name", Box::new(|b| b["participants"][1]["displayName"] = json!("  ")), false),
            ("control char", Box::new(|b| b["participants"][1]["displayName"] = json!("a\u{0007}")), false),
            ("capacity", Box::new(|b| b["maxParticipants"] = json!(1)), false),
            ("capacity too big", Box::new(|b| b["maxParticipants"] = json!(101)), false),
        ];
        for (what, change, impossible) in cases {
            let mut b = body();
            change(&mut b);
            match validate(b) {
                Err(Rejected::Impossible(_)) => assert!(impossible, "{what}: expected 400"),
                Err(Rejected::Invalid(_)) => assert!(!impossible, "{what}: expected 422"),
                Ok(_) => panic!("{what}: accepted"),
            }
        }
        let mut many = body();
        many["participants"] = json!(
            (0..51)
                .map(|i| json!({"userId": format!("u{i}"), "role": "doctor", "displayName": "x"}))
                .collect::<Vec<_>>()
        );
        many["maxParticipants"] = json!(100);
        assert!(matches!(validate(many), Err(Rejected::Invalid(m)) if m.contains("1 to 50")));
        // Unknown fields and roles are shape errors (400 at the edge).
        let mut unknown = body();
        unknown["colour"] = json!("red");
        assert!(serde_json::from_value::<CreateRoom>(unknown).is_err());
        let mut role = body();
        role["participants"][0]["role"] = json!("surgeon");
        assert!(serde_json::from_value::<CreateRoom>(role).is_err());
    }

    #[test]
    fn status_moves_only_forward() {
        use RoomStatus::*;
        assert!(Scheduled.can_become(Active));
        assert!(Active.can_become(Ended));
        assert!(Active.can_become(Cancelled));
        for from in [Ended, Cancelled] {
            for to in [Scheduled, Active, Ended, Cancelled] {
                assert!(!from.can_become(to), "{from:?} -> {to:?}");
            }
        }
        assert!(!Active.can_become(Scheduled));
    }

    #[test]
    fn join_window() {
        let room = validate(body()).unwrap().into_room("c", "r".into(), "j".into(), ProviderKind::Jitsi, Utc::now());
        let p = JoinPolicy::default();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            room.joinable(&p, at("2026-11-23T09:44:59Z")),
            Err(NotJoinable::TooEarly { opens: at("2026-11-23T09:45:00Z") })
        );
        assert_eq!(room.joinable(&p, at("2026-11-23T09:45:00Z")), Ok(()));
        assert_eq!(room.joinable(&p, at("2026-11-23T10:59:59Z")), Ok(()));
        assert_eq!(room.joinable(&p, at("2026-11-23T11:00:00Z")), Err(NotJoinable::TooLate));
        let mut ended = room.clone();
        ended.status = RoomStatus::Ended;
        assert_eq!(ended.joinable(&p, at("2026-11-23T10:00:00Z")), Err(NotJoinable::Closed(RoomStatus::Ended)));
    }
}

/// What Jitsi reports about a room (Prosody event_sync), reduced to what
/// changes a consultation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    OccupantJoined(DateTime<Utc>),
    RoomDestroyed(DateTime<Utc>),
}

/// What a session event did to a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange {
    Started,
    Ended,
    /// Times corrected by a late, out-of-order event; no new domain event.
    Corrected,
}

impl Room {
    /// Applies a session event. The result depends only on the set of events
    /// seen, not their order or repetition: `startedAt` is the earliest join,
    /// `endedAt` the first destruction; a duplicate changes nothing (`None`).
    pub fn apply_session(&self, event: SessionEvent) -> Option<(Room, SessionChange)> {
        let mut next = self.clone();
        let change = match (self.status, event) {
            (RoomStatus::Cancelled, _) => return None,
            (RoomStatus::Scheduled, SessionEvent::OccupantJoined(t)) => {
                next.status = RoomStatus::Active;
                next.started_at = Some(t);
                SessionChange::Started
            }
            (RoomStatus::Active | RoomStatus::Ended, SessionEvent::OccupantJoined(t)) => {
                if self.started_at.is_some_and(|s| s <= t) {
                    return None;
                }
                next.started_at = Some(t);
                SessionChange::Corrected
            }
            (RoomStatus::Scheduled | RoomStatus::Active, SessionEvent::RoomDestroyed(t)) => {
                next.status = RoomStatus::Ended;
                next.ended_at = Some(t);
                SessionChange::Ended
            }
            (RoomStatus::Ended, SessionEvent::RoomDestroyed(_)) => return None,
        };
        next.duration_seconds = match (next.started_at, next.ended_at) {
            (Some(s), Some(e)) => (e - s).num_seconds().max(0),
            _ => 0,
        };
        Some((next, change))
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;

    fn room() -> Room {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        Room {
            room_id: "r".into(),
            clinic_id: "c".into(),
            jitsi_room: "j".into(),
            status: RoomStatus::Scheduled,
            provider: ProviderKind::Jitsi,
            plan: RoomPlan {
                appointment_id: "a".into(),
                scheduled_start: t("2026-11-23T10:00:00Z"),
                scheduled_end: t("2026-11-23T10:30:00Z"),
                participants: vec![],
                lobby: true,
                max_participants: 10,
                recording: false,
            },
            created_at: t("2026-11-23T09:00:00Z"),
            started_at: None,
            ended_at: None,
            duration_seconds: 0,
            prepared: false,
            waiting: vec![],
            admitted: vec![],
            recording_consents: vec![],
            dial_in_pin: None,
        }
    }

    fn run(events: &[SessionEvent]) -> Room {
        events.iter().fold(room(), |r, e| r.apply_session(*e).map(|(n, _)| n).unwrap_or(r))
    }

    #[test]
    fn every_order_and_repetition_ends_in_the_same_state() {
        let base = room().scheduled_start;
        let j1 = SessionEvent::OccupantJoined(base + Duration::seconds(10));
        let j2 = SessionEvent::OccupantJoined(base + Duration::seconds(40));
        let d = SessionEvent::RoomDestroyed(base + Duration::seconds(610));
        let expected = run(&[j1, j2, d]);
        assert_eq!(expected.status, RoomStatus::Ended);
        assert_eq!(expected.duration_seconds, 600);
        for order in [[j1, j2, d], [j2, j1, d], [d, j1, j2], [d, j2, j1], [j1, d, j2], [j2, d, j1]] {
            assert_eq!(run(&order), expected, "{order:?}");
            let doubled: Vec<_> = order.iter().flat_map(|e| [*e, *e]).collect();
            assert_eq!(run(&doubled), expected, "doubled {order:?}");
        }
        assert_eq!(expected.apply_session(d), None);
        assert_eq!(expected.apply_session(j2), None);
    }
}
