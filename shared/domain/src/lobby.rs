//! The waiting room of a `lobby` room, whatever its provider: a listed
//! patient or interpreter checks in and waits until a clinician admits
//! them; until then they get no token. Clinicians are never held back,
//! and nobody is in a room without a lobby. Admission lasts for the room
//! (a dropped call rejoins without knocking again).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::room::{Participant, ParticipantRole, Room};

/// Someone in the waiting room, since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    pub user_id: String,
    pub since: DateTime<Utc>,
}

/// Someone let in, by whom and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Admission {
    pub user_id: String,
    pub at: DateTime<Utc>,
    pub by: String,
    /// When they had checked in.
    pub since: DateTime<Utc>,
}

/// Where a participant stands in the waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LobbyStatus {
    Waiting {
        since: DateTime<Utc>,
    },
    /// Admitted, a clinician, or a room without a lobby.
    Admitted,
    /// Held back and not checked in yet.
    NotCheckedIn,
}

impl LobbyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting { .. } => "waiting",
            Self::Admitted => "admitted",
            Self::NotCheckedIn => "not-checked-in",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LobbyRefusal {
    /// Not a listed participant (404).
    NotListed,
    /// Admit of someone who is not waiting (409).
    NotWaiting,
}

impl ParticipantRole {
    /// Doctors and nurses: never held back, may admit.
    pub fn is_clinician(self) -> bool {
        matches!(self, Self::Doctor | Self::Nurse)
    }
}

impl Room {
    pub fn admission(&self, user_id: &str) -> Option<&Admission> {
        self.admitted.iter().find(|a| a.user_id == user_id)
    }

    /// Whether `participant` waits for a clinician before getting a token.
    pub fn holds_back(&self, participant: &Participant) -> bool {
        self.lobby && !participant.role.is_clinician() && self.admission(&participant.user_id).is_none()
    }

    pub fn lobby_status(&self, participant: &Participant) -> LobbyStatus {
        if !self.holds_back(participant) {
            return LobbyStatus::Admitted;
        }
        match self.waiting.iter().find(|w| w.user_id == participant.user_id) {
            Some(w) => LobbyStatus::Waiting { since: w.since },
            None => LobbyStatus::NotCheckedIn,
        }
    }

    /// `user` checks in at `now`: the room with them waiting if that is
    /// new (`None`: nothing changes — already waiting, or not held back).
    pub fn check_in(&self, user: &str, now: DateTime<Utc>) -> Result<(Option<Room>, LobbyStatus), LobbyRefusal> {
        let participant = self.participant(user).ok_or(LobbyRefusal::NotListed)?;
        match self.lobby_status(participant) {
            LobbyStatus::NotCheckedIn => {
                let mut next = self.clone();
                next.waiting.push(Waiting { user_id: user.to_owned(), since: now });
                Ok((Some(next), LobbyStatus::Waiting { since: now }))
            }
            status => Ok((None, status)),
        }
    }

    /// `by` admits `user` at `now`. Admitting someone already admitted
    /// changes nothing (a retried admit is safe); someone who never checked
    /// in, or a clinician, is not waiting.
    pub fn admit(&self, user: &str, by: &str, now: DateTime<Utc>) -> Result<Option<(Room, Admission)>, LobbyRefusal> {
        let participant = self.participant(user).ok_or(LobbyRefusal::NotListed)?;
        if self.admission(user).is_some() {
            return Ok(None);
        }
        let LobbyStatus::Waiting { since } = self.lobby_status(participant) else {
            return Err(LobbyRefusal::NotWaiting);
        };
        let admission = Admission { user_id: user.to_owned(), at: now, by: by.to_owned(), since };
        let mut next = self.clone();
        next.waiting.retain(|w| w.user_id != user);
        next.admitted.push(admission.clone());
        Ok(Some((next, admission)))
    }

    /// The waiting list, first come first: each with their display name.
    pub fn waiting_list(&self) -> Vec<Value> {
        self.waiting
            .iter()
            .filter_map(|w| {
                let p = self.participant(&w.user_id)?;
                Some(json!({"userId": p.user_id, "displayName": p.display_name, "since": w.since}))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::room::RoomPlan;
    use crate::video::ProviderKind;

    fn room(lobby: bool) -> Room {
        let at = "2026-12-01T10:00:00Z".parse().unwrap();
        let person = |user: &str, role| Participant { user_id: user.into(), role, display_name: user.into() };
        RoomPlan {
            appointment_id: "a".into(),
            scheduled_start: at,
            scheduled_end: at + Duration::minutes(30),
            participants: vec![
                person("doc", ParticipantRole::Doctor),
                person("nurse", ParticipantRole::Nurse),
                person("pat", ParticipantRole::Patient),
                person("int", ParticipantRole::Interpreter),
            ],
            lobby,
            max_participants: 10,
            recording: false,
        }
        .into_room("c", "r".into(), "j".into(), ProviderKind::Jitsi, at)
    }

    #[test]
    fn patients_and_interpreters_wait_clinicians_never() {
        let r = room(true);
        let now = r.scheduled_start;
        for clinician in ["doc", "nurse"] {
            assert!(!r.holds_back(r.participant(clinician).unwrap()));
            assert_eq!(r.check_in(clinician, now), Ok((None, LobbyStatus::Admitted)));
        }
        for waiting in ["pat", "int"] {
            assert!(r.holds_back(r.participant(waiting).unwrap()));
        }
        let open = room(false);
        assert!(!open.holds_back(open.participant("pat").unwrap()), "no lobby, nobody waits");
        assert_eq!(r.check_in("stranger", now), Err(LobbyRefusal::NotListed));
    }

    #[test]
    fn check_in_then_admit_once() {
        let r = room(true);
        let now = r.scheduled_start;
        assert_eq!(r.admit("pat", "doc", now), Err(LobbyRefusal::NotWaiting), "not checked in");
        let (checked, status) = r.check_in("pat", now).unwrap();
        let checked = checked.unwrap();
        assert_eq!(status, LobbyStatus::Waiting { since: now });
        let later = now + Duration::minutes(3);
        assert_eq!(checked.check_in("pat", later), Ok((None, LobbyStatus::Waiting { since: now })), "no second wait");
        assert_eq!(checked.waiting_list().len(), 1);
        assert_eq!(checked.waiting_list()[0]["displayName"], "pat");
        let (admitted, admission) = checked.admit("pat", "doc", later).unwrap().unwrap();
        assert_eq!((admission.since, admission.at, admission.by.as_str()), (now, later, "doc"));
        assert!(admitted.waiting_list().is_empty());
        assert!(!admitted.holds_back(admitted.participant("pat").unwrap()));
        assert_eq!(admitted.admit("pat", "doc", later), Ok(None), "a retried admit changes nothing");
        assert_eq!(admitted.check_in("pat", later), Ok((None, LobbyStatus::Admitted)));
        assert_eq!(admitted.admit("doc", "nurse", later), Err(LobbyRefusal::NotWaiting), "clinicians never wait");
        assert_eq!(admitted.admit("nobody", "doc", later), Err(LobbyRefusal::NotListed));
        assert!(admitted.holds_back(admitted.participant("int").unwrap()), "each is admitted on their own");
    }
}
