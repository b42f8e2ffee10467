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
/// The largest recording vcare takes from Jibri (in parts, as
/// [`upload_parts`] plans them; S3's single PUT stops at 5 GiB).
pub const MAX_RECORDING_BYTES: u64 = 100 * 1024 * 1024 * 1024;
/// S3's bounds on one part of a multipart upload (all but the last).
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
pub const MAX_PART_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
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
    /// Jibri's in parts: S3's multipart upload id and the part size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_bytes: Option<u64>,
}

/// One part of a multipart upload: its number (from 1), where it starts
/// in the file, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    pub offset: u64,
    pub size_bytes: u64,
}

/// The parts a file of `size` is uploaded in, `part_bytes` each (the
/// last smaller); `None` when it goes in one PUT (it fits one part).
pub fn upload_parts(size: u64, part_bytes: u64) -> Option<Vec<Part>> {
    if size <= part_bytes || part_bytes == 0 {
        return None;
    }
    let count = size.div_ceil(part_bytes);
    Some(
        (0..count)
            .map(|i| Part {
                number: i as u32 + 1,
                offset: i * part_bytes,
                size_bytes: part_bytes.min(size - i * part_bytes),
            })
            .collect(),
    )
}

/// The part size for a file of `size`: `preferred`, grown if the file
/// would need more than [`MAX_PARTS`] of it.
pub fn part_size(size: u64, preferred: u64) -> u64 {
    preferred.max(size.div_ceil(MAX_PARTS)).clamp(MIN_PART_BYTES, MAX_PART_BYTES)
}

/// One uploaded part as Jibri's complete names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadedPart {
    pub part_number: u32,
    pub etag: String,
}

/// The body of Jibri's complete: empty for one PUT, the parts' ETags for
/// a multipart upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JibriComplete {
    #[serde(default)]
    pub parts: Vec<UploadedPart>,
}

impl JibriComplete {
    /// For a recording in `count` parts: each part once, in order, each
    /// with an ETag (as S3 gave it, quotes and all). For one PUT: no parts.
    pub fn validate(mut self, count: usize) -> Result<Self, Rejected> {
        if count == 0 {
            return if self.parts.is_empty() {
                Ok(self)
            } else {
                Err(Rejected::Invalid("parts: this recording was uploaded in one PUT".into()))
            };
        }
        self.parts.sort_by_key(|p| p.part_number);
        let numbered = self.parts.iter().enumerate().all(|(i, p)| p.part_number as usize == i + 1);
        if self.parts.len() != count || !numbered {
            return Err(Rejected::Invalid(format!("parts: each of the {count} parts once, numbered from 1")));
        }
        if self.parts.iter().any(|p| p.etag.is_empty() || p.etag.len() > 128) {
            return Err(Rejected::Invalid("parts: each with the ETag S3 answered its PUT with".into()));
        }
        Ok(self)
    }
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
            upload_id: None,
            part_bytes: None,
        }
    }

    /// The parts of a multipart upload (none for one PUT).
    pub fn parts(&self) -> Vec<Part> {
        self.part_bytes.and_then(|b| upload_parts(self.size_bytes, b)).unwrap_or_default()
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

/// A recording room of clinic `c1` (a doctor, a patient), for tests.
#[cfg(test)]
pub(crate) fn recording_room(provider: crate::video::ProviderKind) -> Room {
    let body = json!({
        "appointmentId": "apt-1", "scheduledStart": "2026-11-23T10:00:00Z", "scheduledEnd": "2026-11-23T10:30:00Z",
        "recording": true,
        "participants": [{"userId": "u-doc", "role": "doctor", "displayName": "Dr. Amini"},
                         {"userId": "u-pat", "role": "patient", "displayName": "Zahra"}]
    });
    let plan = serde_json::from_value::<crate::room::CreateRoom>(body).unwrap().validate().unwrap();
    let mut room = plan.into_room("c1", "rm_1".into(), "vc-1".into(), Default::default(), Utc::now());
    room.provider = provider;
    room
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording() -> Recording {
        let room = recording_room(crate::video::ProviderKind::Jitsi);
        let r = Recording::new(&room, "rec_1".into(), RecordingStatus::Uploading, "video/mp4", 1000, Utc::now());
        assert_eq!(r.s3_key, "recordings/c1/rm_1/rec_1.mp4");
        r
    }

    #[test]
    fn large_recordings_go_in_parts_each_named_once_in_complete() {
        assert_eq!(upload_parts(10, 10), None, "one part is one PUT");
        let parts = upload_parts(25, 10).unwrap();
        assert_eq!(
            parts,
            [
                Part { number: 1, offset: 0, size_bytes: 10 },
                Part { number: 2, offset: 10, size_bytes: 10 },
                Part { number: 3, offset: 20, size_bytes: 5 }
            ]
        );
        const GIB: u64 = 1024 * 1024 * 1024;
        assert_eq!(part_size(100 * GIB, GIB), GIB);
        assert_eq!(part_size(100 * GIB, MIN_PART_BYTES), (100 * GIB).div_ceil(MAX_PARTS), "at most 10,000 parts");
        assert_eq!(part_size(1, 1), MIN_PART_BYTES);
        let part = |n, e: &str| UploadedPart { part_number: n, etag: e.into() };
        let ok = JibriComplete { parts: vec![part(2, "\"b\""), part(1, "\"a\"")] }.validate(2).unwrap();
        assert_eq!(ok.parts[0].part_number, 1, "sorted");
        for bad in [
            vec![part(1, "a")],
            vec![part(1, "a"), part(1, "b")],
            vec![part(1, "a"), part(3, "b")],
            vec![part(1, ""), part(2, "b")],
        ] {
            assert!(JibriComplete { parts: bad }.validate(2).is_err());
        }
        assert!(JibriComplete { parts: vec![part(1, "a")] }.validate(0).is_err(), "one PUT names no parts");
        assert!(JibriComplete::default().validate(0).is_ok());
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
        let now = Utc::now();
        let room = recording_room(crate::video::ProviderKind::Jitsi);
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
            JibriUpload { size_bytes: u64::MAX, ..ok.clone() },
            JibriUpload { room_name: String::new(), ..ok.clone() },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
