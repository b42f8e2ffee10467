//! Jibri's upload (a presigned PUT, or parts for a large one, then the
//! object checked before the recording is `ready`) and the room's
//! recordings with download URLs.

use serde_json::{Value, json};
use vcare_domain::caller::{Caller, Role};
use vcare_domain::events::{DomainEvent, RECORDING_FAILED, RECORDING_READY};
use vcare_domain::recordings::{
    JibriComplete, JibriUpload, Recording, RecordingStatus, UploadRefusal, check_object, may_upload, part_size,
    upload_parts,
};
use vcare_domain::room::{ParticipantRole, Standing};
use vcare_jitsi::WebhookSecret;

use super::storage::presign_failed;
use super::{RecordingStorage, RecordingUpload, Recordings};
use crate::RoomError;

impl Recordings {
    /// Jibri's finalize step asks where to put a recording of `roomName`:
    /// only a Jitsi room that may be recorded (every patient said yes),
    /// open or ended within hours. A presigned PUT binding the type, the
    /// exact size and SSE-KMS with the recordings key, for at most 15
    /// minutes.
    pub async fn jibri_upload(
        &self,
        storage: &RecordingStorage,
        secret: &WebhookSecret,
        presented: Option<&[u8]>,
        body: JibriUpload,
    ) -> Result<RecordingUpload, RoomError> {
        crate::check_jitsi_secret(secret, presented)?;
        let body = body.validate()?;
        let (room, _) =
            self.care.store.by_jitsi_room(&body.room_name.to_lowercase()).await?.ok_or(RoomError::NoSuchRoom)?;
        if room.provider != vcare_domain::video::ProviderKind::Jitsi {
            return Err(RoomError::NoSuchRoom);
        }
        let now = self.care.now();
        may_upload(&room, now).map_err(|r| {
            RoomError::Conflict(
                match r {
                    UploadRefusal::NotConsented => "the room may not be recorded: not every patient said yes",
                    UploadRefusal::TooLate => "the room ended too long ago, or was cancelled",
                }
                .into(),
            )
        })?;
        let recording = Recording::new(
            &room,
            vcare_domain::ids::prefixed("rec"),
            RecordingStatus::Uploading,
            &body.content_type,
            body.size_bytes,
            now,
        );
        let part_bytes = part_size(body.size_bytes, storage.part_bytes);
        if let Some(parts) = upload_parts(body.size_bytes, part_bytes) {
            return self.start_parts(storage, &room, recording, part_bytes, parts).await;
        }
        let presigned = storage
            .s3
            .put_object()
            .bucket(&storage.bucket)
            .key(&recording.s3_key)
            .content_type(&body.content_type)
            .content_length(body.size_bytes as i64)
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
            .ssekms_key_id(&storage.key_id)
            .presigned(storage.presigning(storage.upload_for)?)
            .await
            .map_err(presign_failed)?;
        self.care.store.add_recording(&room, &recording, &[]).await?;
        let headers = crate::images::upload_headers(&presigned);
        let expires_at = now + chrono::Duration::from_std(storage.upload_for).unwrap_or_default();
        Ok(RecordingUpload {
            recording_id: recording.recording_id,
            single: Some((presigned.uri().to_owned(), headers)),
            parts: vec![],
            expires_at,
        })
    }

    /// Jibri says the upload is done: the object must be there, of the
    /// size and type presigned, encrypted with the recordings key; then
    /// the recording is `ready` with `virtual_care.recording.ready`. A
    /// complete again is the same answer. A wrong object is 409 and
    /// changes nothing.
    pub async fn jibri_complete(
        &self,
        storage: &RecordingStorage,
        secret: &WebhookSecret,
        presented: Option<&[u8]>,
        recording_id: &str,
        body: JibriComplete,
    ) -> Result<Recording, RoomError> {
        crate::check_jitsi_secret(secret, presented)?;
        if !vcare_domain::ids::is_valid_external_id(recording_id) {
            return Err(RoomError::NoSuchRecording);
        }
        let (recording, version) =
            self.care.store.recording_by_id_versioned(recording_id).await?.ok_or(RoomError::NoSuchRecording)?;
        if recording.status == RecordingStatus::Ready {
            return Ok(recording);
        }
        if recording.status != RecordingStatus::Uploading {
            return Err(RoomError::Conflict(format!("the recording is {}", status_name(recording.status))));
        }
        let body = body.validate(recording.parts().len())?;
        if recording.upload_id.is_some() {
            self.complete_parts(storage, &recording, &body).await?;
        }
        let seen = storage.head(&recording.s3_key).await?;
        check_object(&recording, seen.as_ref(), &storage.key_id)
            .map_err(|r| RoomError::Conflict(r.detail().to_owned()))?;
        let now = self.care.now();
        let also = [self.care.due().put(&storage.expiry(&recording, now))?];
        // From the record as read (uploading), not from what it becomes.
        self.settle(&recording, Some(version), &also, now, |current| {
            (current.status == RecordingStatus::Uploading).then(|| Recording {
                status: RecordingStatus::Ready,
                ready_at: Some(now),
                ..current.clone()
            })
        })
        .await
    }

    /// Stores what `next` makes of the recording as it stands (`None`:
    /// nothing to do) with its event (`ready`, `failed`), and `also` (due
    /// entries) in the same transaction; from `version` when the caller
    /// just read it. The recording as it then stands.
    pub(super) async fn settle<F>(
        &self,
        known: &Recording,
        version: Option<u64>,
        also: &[aws_sdk_dynamodb::types::TransactWriteItem],
        now: chrono::DateTime<chrono::Utc>,
        next: F,
    ) -> Result<Recording, RoomError>
    where
        F: Fn(&Recording) -> Option<Recording>,
    {
        let (settled, _) = self
            .care
            .store
            .update_recording_also(known, version, also, |current| {
                let next = next(current)?;
                let events = recording_event(&next, now).into_iter().collect();
                Some((next, events))
            })
            .await?
            .ok_or(RoomError::NoSuchRecording)?;
        Ok(settled)
    }

    /// The room's recordings for its doctors and the clinic's admins (and
    /// its patients where the clinic allows it), each ready one with a
    /// download URL of at most 15 minutes.
    pub async fn list(
        &self,
        storage: &RecordingStorage,
        caller: &Caller,
        room_id: &str,
    ) -> Result<Vec<Value>, RoomError> {
        let (room, standing) = self.care.room_for(caller, room_id).await?;
        let may = match standing {
            Standing::Participant(ParticipantRole::Doctor) => true,
            Standing::Participant(ParticipantRole::Patient) => storage.patients_may_fetch.contains(&room.clinic_id),
            _ => caller.has_role(Role::ClinicAdmin),
        };
        if !may {
            return Err(RoomError::RecordingsForbidden);
        }
        let expires_at = self.care.now() + chrono::Duration::from_std(storage.download_for).unwrap_or_default();
        let mut out = Vec::new();
        for r in self.care.store.recordings(&room).await? {
            let mut v = r.view();
            if r.status == RecordingStatus::Ready {
                let url = storage
                    .s3
                    .get_object()
                    .bucket(&storage.bucket)
                    .key(&r.s3_key)
                    .presigned(storage.presigning(storage.download_for)?)
                    .await
                    .map_err(presign_failed)?;
                v["downloadUrl"] = json!(url.uri());
                v["expiresAt"] = json!(expires_at);
            }
            out.push(v);
        }
        Ok(out)
    }
}

/// The event a recording's new state emits: `ready` and `failed` (none
/// for egress starting to record).
fn recording_event(r: &Recording, now: chrono::DateTime<chrono::Utc>) -> Option<DomainEvent> {
    let (kind, data) = match r.status {
        RecordingStatus::Ready => {
            let mut data = json!({"roomId": r.room_id, "recordingId": r.recording_id, "sizeBytes": r.size_bytes});
            if let Some(d) = r.duration_seconds {
                data["durationSeconds"] = json!(d);
            }
            (RECORDING_READY, data)
        }
        RecordingStatus::Failed => {
            (RECORDING_FAILED, json!({"roomId": r.room_id, "recordingId": r.recording_id, "error": r.error}))
        }
        _ => return None,
    };
    Some(DomainEvent::new(kind, &r.clinic_id, &r.room_id, now, data))
}

fn status_name(s: RecordingStatus) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
