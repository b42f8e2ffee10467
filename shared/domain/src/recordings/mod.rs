//! A consultation's recordings (API.md "Recordings and dial-in"): what
//! Jibri may upload, what vcare checks before a recording is `ready`, and
//! who may fetch one; `egress`, OpenVidu's recordings through LiveKit
//! egress; `retention`, how long a clinic keeps them.

mod egress;
mod retention;

pub use egress::{StartRefusal, lost, may_start_egress, settle_egress};
pub use retention::{RetentionPolicy, expiry_due};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Rejected;
use crate::room::Room;

/// What Jibri writes (MP4) and what an audio-only recording is.
pub const RECORDING_TYPES: &[&str] = &["video/mp4", "audio/mp4"];
/// S3's limit for one PUT. Larger recordings need a multipart upload,
/// which vcare does not presign yet.
pub const MAX_RECORDING_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// How long after its room ended a recording may still be uploaded
/// (Jibri's finalize step runs when the recording stops).
pub const UPLOAD_AFTER_END: Duration = Duration::hours(6);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingStatus {
    /// Jibri's: presigned, not yet completed.
    Uploading,
    /// OpenVidu's: egress asked for, not yet recording.
    Starting,
    /// OpenVidu's: egress recording (or ending).
    Active,
    Ready,
    Failed,
    /// Deleted by a clinic-admin or the retention sweep: the record stays,
    /// the object is gone.
    Deleted,
}

/// A recording as stored under its room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub recording_id: String,
    pub clinic_id: String,
    pub room_id: String,
    pub status: RecordingStatus,
    pub content_type: String,
    pub size_bytes: u64,
    pub s3_key: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    /// Under legal hold: never deleted, by hand or by the retention sweep.
    #[serde(default)]
    pub hold: bool,
    /// Why it failed (a fixed text, or LiveKit's bounded error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// OpenVidu's: LiveKit's egress id (`EG_…`), once egress started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_id: Option<String>,
}

impl Recording {
    /// A new recording of `room`, its object under the room's prefix
    /// (`recordings/<clinic>/<roomId>/<recordingId>.mp4`).
    pub fn new(
        room: &Room,
        recording_id: String,
        status: RecordingStatus,
        content_type: &str,
        size_bytes: u64,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            s3_key: format!("recordings/{}/{}/{recording_id}.mp4", room.clinic_id, room.room_id),
            recording_id,
            clinic_id: room.clinic_id.clone(),
            room_id: room.room_id.clone(),
            status,
            content_type: content_type.to_owned(),
            size_bytes,
            created_at: now,
            ready_at: None,
            duration_seconds: None,
            hold: false,
            error: None,
            egress_id: None,
        }
    }

    /// Whether egress may still be recording it.
    pub fn is_recording(&self) -> bool {
        matches!(self.status, RecordingStatus::Starting | RecordingStatus::Active)
    }
}

impl Recording {
    /// What the API shows (the download URL is added by whoever may fetch it).
    pub fn view(&self) -> Value {
        json!({
            "recordingId": self.recording_id, "roomId": self.room_id, "status": self.status,
            "sizeBytes": self.size_bytes, "durationSeconds": self.duration_seconds,
            "createdAt": self.created_at, "hold": self.hold, "error": self.error,
        })
    }
}

/// The body of `PUT /v1/virtual-care/recordings/{id}/hold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldRequest {
    pub hold: bool,
}

/// Why a recording may not be deleted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteRefusal {
    UnderHold,
    AlreadyDeleted,
}

impl Recording {
    /// Whether it may be deleted (never under legal hold).
    pub fn may_delete(&self) -> Result<(), DeleteRefusal> {
        if self.hold {
            return Err(DeleteRefusal::UnderHold);
        }
        if self.status == RecordingStatus::Deleted {
            return Err(DeleteRefusal::AlreadyDeleted);
        }
        Ok(())
    }
}

/// The body of Jibri's `POST /v1/virtual-care/jibri/recordings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JibriUpload {
    pub room_name: String,
    pub content_type: String,
    pub size_bytes: u64,
}

impl JibriUpload {
    pub fn validate(self) -> Result<Self, Rejected> {
        if self.room_name.is_empty() || self.room_name.len() > 128 {
            return Err(Rejected::Invalid("roomName: the conference's room name".into()));
        }
        if !RECORDING_TYPES.contains(&self.content_type.as_str()) {
            return Err(Rejected::Invalid(format!("contentType: one of {}", RECORDING_TYPES.join(", "))));
        }
        if !(1..=MAX_RECORDING_BYTES).contains(&self.size_bytes) {
            return Err(Rejected::Invalid(format!("sizeBytes: 1 to {MAX_RECORDING_BYTES}")));
        }
        Ok(self)
    }
}

/// Why a room takes no upload now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadRefusal {
    /// Not a recording room, or not every patient said yes (409).
    NotConsented,
    /// Cancelled, or ended more than [`UPLOAD_AFTER_END`] ago (409).
    TooLate,
}

/// Whether `room` takes a Jibri upload at `now`.
pub fn may_upload(room: &Room, now: DateTime<Utc>) -> Result<(), UploadRefusal> {
    use crate::room::RoomStatus;
    match room.status {
        RoomStatus::Cancelled => return Err(UploadRefusal::TooLate),
        RoomStatus::Ended if room.ended_at.is_none_or(|e| now - e > UPLOAD_AFTER_END) => {
            return Err(UploadRefusal::TooLate);
        }
        _ => {}
    }
    if !room.may_record() {
        return Err(UploadRefusal::NotConsented);
    }
    Ok(())
}

/// What S3 says of an uploaded object (HeadObject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSeen {
    pub size_bytes: u64,
    pub content_type: Option<String>,
    /// `x-amz-server-side-encryption`.
    pub encryption: Option<String>,
    /// The KMS key's ARN or id.
    pub kms_key: Option<String>,
}

/// Why an uploaded object is not the recording that was presigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectRefusal {
    Missing,
    WrongSize,
    WrongType,
    NotEncrypted,
}

impl ObjectRefusal {
    pub fn detail(self) -> &'static str {
        match self {
            Self::Missing => "no object was uploaded",
            Self::WrongSize => "the object is not the size presigned",
            Self::WrongType => "the object is not the content type presigned",
            Self::NotEncrypted => "the object is not encrypted with the recordings key",
        }
    }
}

/// Checks the object against what was presigned, and its encryption with
/// `key_id` (matched as an ARN's tail or the whole id).
pub fn check_object(recording: &Recording, seen: Option<&ObjectSeen>, key_id: &str) -> Result<(), ObjectRefusal> {
    let seen = seen.ok_or(ObjectRefusal::Missing)?;
    if seen.size_bytes != recording.size_bytes {
        return Err(ObjectRefusal::WrongSize);
    }
    if seen.content_type.as_deref() != Some(recording.content_type.as_str()) {
        return Err(ObjectRefusal::WrongType);
    }
    let same_key = |k: &str| k == key_id || k.ends_with(&format!("/{}", key_id.rsplit('/').next().unwrap_or(key_id)));
    if seen.encryption.as_deref() != Some("aws:kms") || !seen.kms_key.as_deref().is_some_and(same_key) {
        return Err(ObjectRefusal::NotEncrypted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording() -> Recording {
        Recording {
            recording_id: "rec_1".into(),
            clinic_id: "c1".into(),
            room_id: "rm_1".into(),
            status: RecordingStatus::Uploading,
            content_type: "video/mp4".into(),
            size_bytes: 1000,
            s3_key: "recordings/c1/rm_1/rec_1.mp4".into(),
            created_at: Utc::now(),
            ready_at: None,
            duration_seconds: None,
            hold: false,
            error: None,
            egress_id: None,
        }
    }

    const KEY: &str = "arn:aws:kms:eu-central-1:123456789012:key/1111-2222";

    fn seen() -> ObjectSeen {
        ObjectSeen {
            size_bytes: 1000,
            content_type: Some("video/mp4".into()),
            encryption: Some("aws:kms".into()),
            kms_key: Some(KEY.into()),
        }
    }

    #[test]
    fn only_the_object_presigned_is_ready() {
        let r = recording();
        assert_eq!(check_object(&r, Some(&seen()), KEY), Ok(()));
        assert_eq!(check_object(&r, Some(&seen()), "1111-2222"), Ok(()), "a key id matches its ARN");
        assert_eq!(check_object(&r, None, KEY), Err(ObjectRefusal::Missing));
        let wrong = |f: fn(&mut ObjectSeen)| {
            let mut s = seen();
            f(&mut s);
            check_object(&r, Some(&s), KEY)
        };
        assert_eq!(wrong(|s| s.size_bytes = 1001), Err(ObjectRefusal::WrongSize));
        assert_eq!(wrong(|s| s.content_type = Some("video/webm".into())), Err(ObjectRefusal::WrongType));
        assert_eq!(wrong(|s| s.encryption = Some("AES256".into())), Err(ObjectRefusal::NotEncrypted));
        assert_eq!(wrong(|s| s.encryption = None), Err(ObjectRefusal::NotEncrypted));
        assert_eq!(
            wrong(|s| s.kms_key = Some("arn:aws:kms:eu-central-1:123456789012:key/other".into())),
            Err(ObjectRefusal::NotEncrypted)
        );
    }

    #[test]
    fn uploads_are_taken_only_for_consented_rooms_until_hours_after_their_end() {
        let body = json!({
            "appointmentId": "apt-1", "scheduledStart": "2026-11-23T10:00:00Z", "scheduledEnd": "2026-11-23T10:30:00Z",
            "recording": true,
            "participants": [{"userId": "u-doc", "role": "doctor", "displayName": "Dr. Amini"},
                             {"userId": "u-pat", "role": "patient", "displayName": "Zahra"}]
        });
        let plan = serde_json::from_value::<crate::room::CreateRoom>(body).unwrap().validate().unwrap();
        let now = Utc::now();
        let room = plan.into_room("c1", "rm_1".into(), "vc-1".into(), Default::default(), now);
        assert_eq!(may_upload(&room, now), Err(UploadRefusal::NotConsented));
        let room = room.with_recording_consent("u-pat", true, now).unwrap().unwrap();
        assert_eq!(may_upload(&room, now), Ok(()));
        let mut ended = room.clone();
        ended.status = crate::room::RoomStatus::Ended;
        ended.ended_at = Some(now - Duration::hours(5));
        assert_eq!(may_upload(&ended, now), Ok(()), "Jibri finalizes after the end");
        ended.ended_at = Some(now - Duration::hours(7));
        assert_eq!(may_upload(&ended, now), Err(UploadRefusal::TooLate));
        let mut cancelled = room;
        cancelled.status = crate::room::RoomStatus::Cancelled;
        assert_eq!(may_upload(&cancelled, now), Err(UploadRefusal::TooLate));
    }

    #[test]
    fn uploads_name_a_known_type_and_a_bounded_size() {
        let ok = JibriUpload { room_name: "vc-1".into(), content_type: "video/mp4".into(), size_bytes: 1 };
        assert!(ok.clone().validate().is_ok());
        for bad in [
            JibriUpload { content_type: "video/webm".into(), ..ok.clone() },
            JibriUpload { size_bytes: 0, ..ok.clone() },
            JibriUpload { size_bytes: MAX_RECORDING_BYTES + 1, ..ok.clone() },
            JibriUpload { room_name: String::new(), ..ok.clone() },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
