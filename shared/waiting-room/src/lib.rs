//! The waiting room (`vcare_domain::lobby` decides; this carries it out):
//! a check-in is written on the room with its event in one transaction,
//! and the room's doctors and nurses are told once, by push or SMS through
//! vcare's own notifications (their preferences, suppressions and quiet
//! hours hold: category `waiting-room`, high priority). An admission is
//! written likewise. Provider-agnostic: a token is refused until admitted
//! (token-issue), on Jitsi and OpenVidu alike.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_care::{RoomError, Rooms};
use vcare_comms::{Notice, Notifications, Submitted};
use vcare_domain::appointment::local_when;
use vcare_domain::events::{DomainEvent, PATIENT_ADMITTED, PATIENT_WAITING};
use vcare_domain::lobby::{Admission, LobbyRefusal, LobbyStatus};
use vcare_domain::notification::{Context, Priority};
use vcare_domain::room::Room;
use vcare_runtime::{Env, Error};

pub struct WaitingRoom {
    pub care: Rooms,
    pub comms: Notifications,
}

/// What a check-in came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedIn {
    pub status: LobbyStatus,
    /// Clinicians a notification was accepted for (now or at the first check-in).
    pub clinicians_told: usize,
}

impl CheckedIn {
    /// As API.md shows it, here and to the waiting page.
    pub fn view(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"status": self.status.as_str(), "clinicianNotified": self.clinicians_told > 0});
        if let LobbyStatus::Waiting { since } = self.status {
            v["since"] = serde_json::json!(since);
        }
        v
    }
}

fn refused(r: LobbyRefusal) -> RoomError {
    match r {
        LobbyRefusal::NotListed => RoomError::NoSuchParticipant,
        LobbyRefusal::NotWaiting => RoomError::NotWaiting,
    }
}

fn event_data(room: &Room, user: &str, since: DateTime<Utc>) -> serde_json::Value {
    let role = room.participant(user).map(|p| p.role.as_str()).unwrap_or_default();
    serde_json::json!({
        "roomId": room.room_id, "appointmentId": room.appointment_id, "userId": user, "role": role,
        "provider": room.provider.as_str(), "since": since,
    })
}

impl WaitingRoom {
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, Error> {
        Ok(Self { care: Rooms::from_env(env, sdk)?, comms: Notifications::from_env(env, sdk)? })
    }

    /// `user` checks in to `room` (only inside its join window). The first
    /// check-in writes them waiting with `virtual_care.patient.waiting` and
    /// tells the clinicians; a repeat (a page that polls, a reload) changes
    /// nothing and tells nobody again.
    pub async fn check_in(&self, room: &Room, user: &str) -> Result<CheckedIn, RoomError> {
        let now = self.care.now();
        room.joinable(&self.care.config.join, now).map_err(RoomError::not_joinable)?;
        let (_, status) = room.check_in(user, now).map_err(refused)?;
        let (room, status, first) = match status {
            LobbyStatus::Waiting { .. } if !room.waiting.iter().any(|w| w.user_id == user) => {
                // Written over the room as stored now (a concurrent admit or
                // check-in wins, and this one reads what it left).
                let (room, first) = self
                    .care
                    .store
                    .update(&room.clinic_id, &room.room_id, |current| {
                        let (next, s) = current.check_in(user, now).ok()?;
                        let (next, LobbyStatus::Waiting { since }) = (next?, s) else { return None };
                        let data = event_data(&next, user, since);
                        let event = DomainEvent::new(PATIENT_WAITING, &next.clinic_id, &next.room_id, now, data);
                        Some((next, vec![event]))
                    })
                    .await?
                    .ok_or(RoomError::NoSuchRoom)?;
                let participant = room.participant(user).ok_or(RoomError::NoSuchParticipant)?;
                let status = room.lobby_status(participant);
                (room, status, first)
            }
            other => (room.clone(), other, false),
        };
        let clinicians_told = match status {
            LobbyStatus::Waiting { since } => self.tell_clinicians(&room, user, since, first, now).await?,
            _ => 0,
        };
        Ok(CheckedIn { status, clinicians_told })
    }

    /// Each listed doctor and nurse with a contact under the room gets the
    /// `patient-waiting` notice, under a key of this check-in's own (so a
    /// repeat is the same request, never a second message).
    async fn tell_clinicians(
        &self,
        room: &Room,
        user: &str,
        since: DateTime<Utc>,
        first: bool,
        now: DateTime<Utc>,
    ) -> Result<usize, RoomError> {
        let mut told = 0;
        for clinician in room.participants.iter().filter(|p| p.role.is_clinician()) {
            let Some(contact) = self.care.store.contact(room, &clinician.user_id).await? else { continue };
            let recipient = self
                .comms
                .open_contact(&room.clinic_id, &room.room_id, &clinician.user_id, &contact.sealed_contact)
                .await
                .map_err(|_| RoomError::Unavailable)?;
            let when = local_when(room.scheduled_start, recipient.timezone.as_deref());
            let notice = Notice {
                template: "patient-waiting",
                variables: BTreeMap::from([("when".to_owned(), when)]),
                priority: Priority::High,
                context: Some(Context {
                    appointment_id: Some(room.appointment_id.clone()),
                    room_id: Some(room.room_id.clone()),
                }),
                replies: vec![],
            };
            let key = format!("waiting:{}:{user}:{}:{}", room.room_id, since.timestamp(), clinician.user_id);
            match self.comms.notify(&room.clinic_id, &key, recipient, notice, now).await {
                Ok(Some(Submitted::Accepted(_) | Submitted::InProgress)) => told += 1,
                Ok(_) => {}
                Err(e) => {
                    // The check-in stands; the page says nobody was told.
                    tracing::warn!(room_id = %room.room_id, error = %e, "a clinician could not be told of a waiting patient");
                }
            }
        }
        if first && told == 0 {
            vcare_runtime::metrics::count("WaitingUntold", &[("provider", room.provider.as_str())]);
        }
        Ok(told)
    }

    /// `by` admits `user`: written with `virtual_care.patient.admitted`;
    /// admitting someone already admitted answers the same admission.
    pub async fn admit(&self, room: &Room, user: &str, by: &str) -> Result<Admission, RoomError> {
        let now = self.care.now();
        if let Some(a) = room.admission(user) {
            return Ok(a.clone());
        }
        room.admit(user, by, now).map_err(refused)?;
        let (room, _) = self
            .care
            .store
            .update(&room.clinic_id, &room.room_id, |current| {
                let (next, a) = current.admit(user, by, now).ok()??;
                let mut data = event_data(&next, user, a.since);
                data["admittedBy"] = serde_json::json!(by);
                data["waitedSeconds"] = serde_json::json!((a.at - a.since).num_seconds().max(0));
                let event = DomainEvent::new(PATIENT_ADMITTED, &next.clinic_id, &next.room_id, now, data);
                Some((next, vec![event]))
            })
            .await?
            .ok_or(RoomError::NoSuchRoom)?;
        // Admitted now or by a concurrent admit; else what the room says now.
        match room.admission(user) {
            Some(a) => Ok(a.clone()),
            None => Err(room.admit(user, by, now).err().map_or(RoomError::NotWaiting, refused)),
        }
    }
}
