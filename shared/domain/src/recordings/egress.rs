//! OpenVidu's recordings: when the room's doctor may start LiveKit egress,
//! and what an egress's state (its webhook, or the sweep's `ListEgress`)
//! makes of the recording.

use chrono::{DateTime, Utc};

use super::{Recording, RecordingStatus};
use crate::room::Room;
use crate::video::ProviderKind;
use crate::video::egress::{EgressInfo, EgressStatus};

/// Why egress may not start now (each a 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRefusal {
    /// A Jitsi room: Jibri is started from the meeting.
    NotOpenVidu,
    /// Ended or cancelled.
    Closed,
    /// Not a recording room, or not every patient said yes.
    NotConsented,
    /// Egress is already starting or recording.
    AlreadyRecording,
}

impl StartRefusal {
    pub fn detail(self) -> &'static str {
        match self {
            Self::NotOpenVidu => "a Jitsi room is recorded by Jibri, started from the meeting",
            Self::Closed => "the room is ended or cancelled",
            Self::NotConsented => "the room may not be recorded: not every patient said yes",
            Self::AlreadyRecording => "the room is already being recorded",
        }
    }
}

/// Whether the room's egress may start, given its recordings.
pub fn may_start_egress(room: &Room, recordings: &[Recording]) -> Result<(), StartRefusal> {
    if room.provider != ProviderKind::Openvidu {
        return Err(StartRefusal::NotOpenVidu);
    }
    if !room.status.is_open() {
        return Err(StartRefusal::Closed);
    }
    if !room.may_record() {
        return Err(StartRefusal::NotConsented);
    }
    if recordings.iter().any(Recording::is_recording) {
        return Err(StartRefusal::AlreadyRecording);
    }
    Ok(())
}

/// What `info` makes of `current` at `now`: `None` when nothing changes
/// (another egress, a recording already settled, a repeat, or a state
/// it is already in). `EGRESS_COMPLETE` with a file is `ready` (its size
/// and duration from the file; the caller checks the object before it
/// stores this); without a file, or `FAILED`/`ABORTED`/`LIMIT_REACHED`,
/// it is `failed` with the status and LiveKit's error.
pub fn settle_egress(current: &Recording, info: &EgressInfo, now: DateTime<Utc>) -> Option<Recording> {
    if !current.is_recording() || current.egress_id.as_deref() != Some(info.egress_id.as_str()) {
        return None;
    }
    let mut next = current.clone();
    match info.status {
        EgressStatus::Starting => return None,
        EgressStatus::Active | EgressStatus::Ending => {
            if current.status == RecordingStatus::Active {
                return None;
            }
            next.status = RecordingStatus::Active;
        }
        EgressStatus::Complete => {
            match info.file.as_ref().and_then(|f| f.size_bytes.filter(|s| *s > 0).map(|s| (f, s))) {
                Some((file, size)) => {
                    next.status = RecordingStatus::Ready;
                    next.size_bytes = size;
                    next.duration_seconds = file.duration_seconds;
                    next.ready_at = Some(now);
                }
                None => {
                    next.status = RecordingStatus::Failed;
                    next.error = Some("EGRESS_COMPLETE: the egress wrote no file".into());
                }
            }
        }
        EgressStatus::Failed | EgressStatus::Aborted | EgressStatus::LimitReached => {
            next.status = RecordingStatus::Failed;
            next.error = Some(match &info.error {
                Some(e) => format!("{}: {e}", info.status.as_str()),
                None => info.status.as_str().to_owned(),
            });
        }
    }
    Some(next)
}

/// The recording failed without word from LiveKit (`reason`: a fixed text).
pub fn lost(current: &Recording, reason: &str) -> Option<Recording> {
    current.is_recording().then(|| Recording {
        status: RecordingStatus::Failed,
        error: Some(reason.to_owned()),
        ..current.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::egress::EgressFile;

    fn room(provider: ProviderKind) -> Room {
        super::super::recording_room(provider)
    }

    fn recording(status: RecordingStatus) -> Recording {
        let mut r = Recording::new(&room(ProviderKind::Openvidu), "rec_1".into(), status, "video/mp4", 0, Utc::now());
        r.egress_id = Some("EG_1".into());
        r
    }

    fn info(status: EgressStatus, file: Option<EgressFile>) -> EgressInfo {
        EgressInfo { egress_id: "EG_1".into(), room_name: "vc-1".into(), status, error: None, file }
    }

    #[test]
    fn egress_starts_only_for_consented_open_openvidu_rooms_not_yet_recording() {
        let now = Utc::now();
        assert_eq!(may_start_egress(&room(ProviderKind::Jitsi), &[]), Err(StartRefusal::NotOpenVidu));
        let unconsented = room(ProviderKind::Openvidu);
        assert_eq!(may_start_egress(&unconsented, &[]), Err(StartRefusal::NotConsented));
        let consented = unconsented.with_recording_consent("u-pat", true, now).unwrap().unwrap();
        assert_eq!(may_start_egress(&consented, &[]), Ok(()));
        assert_eq!(
            may_start_egress(&consented, &[recording(RecordingStatus::Active)]),
            Err(StartRefusal::AlreadyRecording)
        );
        assert_eq!(may_start_egress(&consented, &[recording(RecordingStatus::Failed)]), Ok(()));
        let mut ended = consented;
        ended.status = crate::room::RoomStatus::Ended;
        assert_eq!(may_start_egress(&ended, &[]), Err(StartRefusal::Closed));
    }

    #[test]
    fn only_egress_complete_with_a_file_is_ready() {
        let now = Utc::now();
        let file = EgressFile { filename: "f.mp4".into(), size_bytes: Some(4096), duration_seconds: Some(1800) };
        let starting = recording(RecordingStatus::Starting);
        let active = settle_egress(&starting, &info(EgressStatus::Active, None), now).unwrap();
        assert_eq!(active.status, RecordingStatus::Active);
        assert_eq!(settle_egress(&active, &info(EgressStatus::Ending, None), now), None, "already active");
        let ready = settle_egress(&active, &info(EgressStatus::Complete, Some(file.clone())), now).unwrap();
        assert_eq!(
            (ready.status, ready.size_bytes, ready.duration_seconds),
            (RecordingStatus::Ready, 4096, Some(1800))
        );
        assert_eq!(settle_egress(&ready, &info(EgressStatus::Failed, None), now), None, "settled stays settled");
        let empty = settle_egress(&active, &info(EgressStatus::Complete, None), now).unwrap();
        assert_eq!(empty.status, RecordingStatus::Failed);
        for status in [EgressStatus::Failed, EgressStatus::Aborted, EgressStatus::LimitReached] {
            let mut i = info(status, Some(file.clone()));
            i.error = Some("pipeline frozen".into());
            let failed = settle_egress(&active, &i, now).unwrap();
            assert_eq!(failed.status, RecordingStatus::Failed);
            assert_eq!(failed.error.unwrap(), format!("{}: pipeline frozen", status.as_str()));
        }
        let mut other = info(EgressStatus::Complete, Some(file));
        other.egress_id = "EG_2".into();
        assert_eq!(settle_egress(&active, &other, now), None, "another egress changes nothing");
        assert_eq!(lost(&ready, "x"), None);
        assert_eq!(lost(&active, "lost").unwrap().status, RecordingStatus::Failed);
    }
}
