//! OpenVidu's recordings: the room's doctor starts and stops LiveKit
//! egress (room composite, MP4) straight into the recordings bucket under
//! the room's prefix; LiveKit's `egress_*` webhooks, or the sweep asking
//! `ListEgress` when none came, settle it. Only `EGRESS_COMPLETE` whose
//! object S3 has, of the size LiveKit reported, encrypted with the
//! recordings key, is `ready`.
//!
//! The recording is stored (`starting`, with its first sweep entry and
//! the room's egress lock, so two starts at once record once) before
//! egress is asked, so a crash or a lost answer after the ask leaves a
//! record the sweep finds the egress for by its file path. Settling it
//! releases the lock in the same transaction.

use chrono::{DateTime, Duration, Utc};
use vcare_domain::caller::Caller;
use vcare_domain::due::{Due, DueKind};
use vcare_domain::recordings::{
    Recording, RecordingStatus, StartRefusal, check_object, lost, may_start_egress, settle_egress,
};
use vcare_domain::room::{ParticipantRole, Room, Standing};
use vcare_domain::video::egress::EgressInfo;
use vcare_livekit::TwirpError;

use super::{RecordingStorage, Recordings};
use crate::RoomError;
use crate::video::OpenVidu;

/// When the sweep first looks at an egress asked for, and then how often
/// while it records.
pub const FIRST_CHECK: Duration = Duration::minutes(2);
pub const RECHECK: Duration = Duration::minutes(10);

/// What the sweep did with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EgressChecked {
    /// Ready or failed now.
    Settled,
    /// Still recording: looked at again later.
    Recording,
    /// Nothing to do (settled before, or gone).
    Done,
}

fn check_entry(r: &Recording, at: DateTime<Utc>) -> Due {
    Due { at, kind: DueKind::EgressCheck, clinic: r.clinic_id.clone(), id: r.recording_id.clone() }
}

fn provider_failed(e: impl std::fmt::Display) -> RoomError {
    tracing::error!(error = %e, "a LiveKit egress call failed");
    RoomError::ProviderUnavailable
}

impl Recordings {
    /// The room of `room_id` for its doctors only (others who may see it: 403).
    async fn doctors_room(&self, caller: &Caller, room_id: &str) -> Result<Room, RoomError> {
        let (room, standing) = self.care.room_for(caller, room_id).await?;
        if standing != Standing::Participant(ParticipantRole::Doctor) {
            return Err(RoomError::DoctorsOnly);
        }
        Ok(room)
    }

    /// `POST .../rooms/{id}/recording/start`: an open OpenVidu room every
    /// patient consented to, not already recording (each else 409).
    pub async fn start_egress(
        &self,
        storage: &RecordingStorage,
        openvidu: Option<&OpenVidu>,
        caller: &Caller,
        room_id: &str,
    ) -> Result<Recording, RoomError> {
        let room = self.doctors_room(caller, room_id).await?;
        let existing = self.care.store.recordings(&room).await?;
        may_start_egress(&room, &existing).map_err(|r| RoomError::Conflict(r.detail().into()))?;
        let openvidu = openvidu.ok_or(RoomError::ProviderUnavailable)?;
        let service = openvidu.room_service().await.map_err(provider_failed)?;
        let now = self.care.now();
        let recording =
            Recording::new(&room, vcare_domain::ids::prefixed("rec"), RecordingStatus::Starting, "video/mp4", 0, now);
        let first = self.care.due().put(&check_entry(&recording, now + FIRST_CHECK))?;
        if !self.care.store.add_egress_recording(&room, &recording, &[first]).await? {
            return Err(RoomError::Conflict(StartRefusal::AlreadyRecording.detail().into()));
        }
        match service.start_egress(&room.jitsi_room, &recording.s3_key, &storage.egress).await {
            Ok(egress_id) => {
                let (started, _) = self
                    .care
                    .store
                    .update_recording(&recording, |current| {
                        (current.egress_id.is_none() && current.is_recording())
                            .then(|| (Recording { egress_id: Some(egress_id.clone()), ..current.clone() }, vec![]))
                    })
                    .await?
                    .ok_or(RoomError::NoSuchRecording)?;
                // A patient who said no while LiveKit was answering: stop now.
                let current = self.care.store.get(&room.clinic_id, &room.room_id).await?;
                if !current.is_some_and(|(r, _)| r.may_record()) {
                    service.stop_egress(&egress_id).await.map_err(provider_failed)?;
                    return Err(RoomError::Conflict("consent was withdrawn: the recording was stopped".into()));
                }
                Ok(started)
            }
            Err(TwirpError::Answered { status, code }) if status < 500 => {
                // LiveKit refused (the meeting's room is not up, say): no
                // egress exists, so the recording failed now.
                let reason = format!("LiveKit refused to start egress: {code}");
                let also = [
                    self.care.due().put(&storage.expiry(&recording, now))?,
                    self.care.store.egress_unlock(&recording)?,
                ];
                self.settle(&recording, None, &also, now, |current| lost(current, &reason)).await?;
                Err(RoomError::Conflict(format!("the video provider refused to start recording ({code})")))
            }
            // Unknown whether egress started: the sweep settles it.
            Err(e) => Err(provider_failed(e)),
        }
    }

    /// `POST .../rooms/{id}/recording/stop`: stops the room's egress; the
    /// recording is settled by its `egress_ended`. 409 when not recording.
    pub async fn stop_egress(
        &self,
        openvidu: Option<&OpenVidu>,
        caller: &Caller,
        room_id: &str,
    ) -> Result<Recording, RoomError> {
        let room = self.doctors_room(caller, room_id).await?;
        self.stop_recording_of(&room, openvidu)
            .await?
            .ok_or(RoomError::Conflict("the room is not being recorded".into()))
    }

    /// Stops whatever egress records `room` (a withdrawn consent does this
    /// too); the recording stopped, if one was.
    pub(super) async fn stop_recording_of(
        &self,
        room: &Room,
        openvidu: Option<&OpenVidu>,
    ) -> Result<Option<Recording>, RoomError> {
        let recordings = self.care.store.recordings(room).await?;
        let Some(recording) = recordings.into_iter().find(Recording::is_recording) else { return Ok(None) };
        let Some(egress_id) = recording.egress_id.as_deref() else {
            return Err(RoomError::Conflict("the recording is still starting; try again in a moment".into()));
        };
        let openvidu = openvidu.ok_or(RoomError::ProviderUnavailable)?;
        let service = openvidu.room_service().await.map_err(provider_failed)?;
        service.stop_egress(egress_id).await.map_err(provider_failed)?;
        Ok(Some(recording))
    }

    /// An egress's state from LiveKit (a webhook) for `room`: the
    /// recording it settles or advances, if it is one of the room's.
    pub async fn egress_changed(
        &self,
        storage: &RecordingStorage,
        room: &Room,
        info: &EgressInfo,
    ) -> Result<Option<Recording>, RoomError> {
        let recordings = self.care.store.recordings_versioned(room).await?;
        match recordings.into_iter().find(|(r, _)| is_its(r, info)) {
            Some((known, version)) => self.apply_egress(storage, known, Some(version), info).await.map(Some),
            None => Ok(None),
        }
    }

    /// What `info` makes of `known`, the object checked before `ready`.
    async fn apply_egress(
        &self,
        storage: &RecordingStorage,
        known: Recording,
        version: Option<u64>,
        info: &EgressInfo,
    ) -> Result<Recording, RoomError> {
        let now = self.care.now();
        let adopted = adopt(&known, info);
        let Some(mut target) = settle_egress(&adopted, info, now) else { return Ok(known) };
        if target.status == RecordingStatus::Ready {
            let seen = storage.head(&target.s3_key).await?;
            if let Err(r) = check_object(&target, seen.as_ref(), &storage.key_id) {
                tracing::warn!(recording_id = %target.recording_id, reason = r.detail(), "an egress file failed its check");
                target.status = RecordingStatus::Failed;
                target.ready_at = None;
                target.error = Some(format!("EGRESS_COMPLETE: {}", r.detail()));
            }
        }
        let also = match target.status {
            RecordingStatus::Ready | RecordingStatus::Failed => {
                vec![self.care.due().put(&storage.expiry(&target, now))?, self.care.store.egress_unlock(&target)?]
            }
            _ => vec![],
        };
        self.settle(&known, version, &also, now, |current| {
            let current = adopt(current, info);
            (current.is_recording() && current.egress_id == target.egress_id && current.status != target.status)
                .then(|| target.clone())
        })
        .await
    }

    /// The sweep's entry for a recording still `starting` or `active`:
    /// LiveKit's word on its egress (by id, or by its file when the start's
    /// answer was lost) settles it; still recording, it is looked at again
    /// later; an egress LiveKit does not know failed.
    pub async fn check_egress(
        &self,
        storage: &RecordingStorage,
        openvidu: &OpenVidu,
        due: &Due,
        now: DateTime<Utc>,
    ) -> Result<EgressChecked, RoomError> {
        let index = self.care.due();
        let found = self.care.store.recording_by_id_versioned(&due.id).await?.filter(|(r, _)| r.is_recording());
        let Some((recording, version)) = found else {
            index.remove(due).await?;
            return Ok(EgressChecked::Done);
        };
        let Some((room, _)) = self.care.store.get(&recording.clinic_id, &recording.room_id).await? else {
            index.remove(due).await?;
            return Ok(EgressChecked::Done);
        };
        let service = openvidu.room_service().await.map_err(provider_failed)?;
        let listed = service.list_egress(&room.jitsi_room).await.map_err(provider_failed)?;
        let found = listed.iter().filter_map(|v| EgressInfo::parse(v).ok()).find(|i| is_its(&recording, i));
        let settled = match found {
            Some(info) => self.apply_egress(storage, recording, Some(version), &info).await?,
            None => {
                let reason = match recording.egress_id {
                    Some(_) => "LiveKit has no record of the egress",
                    None => "the egress never started",
                };
                let also = [index.put(&storage.expiry(&recording, now))?, self.care.store.egress_unlock(&recording)?];
                self.settle(&recording, Some(version), &also, now, |current| lost(current, reason)).await?
            }
        };
        if settled.is_recording() {
            index.add(&check_entry(&settled, now + RECHECK)).await?;
            index.remove(due).await?;
            return Ok(EgressChecked::Recording);
        }
        index.remove(due).await?;
        Ok(EgressChecked::Settled)
    }
}

/// Whether `info` is the egress of `r`: its id, or (the start's answer
/// lost) the file it writes.
fn is_its(r: &Recording, info: &EgressInfo) -> bool {
    match &r.egress_id {
        Some(id) => *id == info.egress_id,
        None => r.is_recording() && info.file.as_ref().is_some_and(|f| f.filename == r.s3_key),
    }
}

/// `r` with the egress id it did not know yet.
fn adopt(r: &Recording, info: &EgressInfo) -> Recording {
    match r.egress_id {
        Some(_) => r.clone(),
        None if is_its(r, info) => Recording { egress_id: Some(info.egress_id.clone()), ..r.clone() },
        None => r.clone(),
    }
}
