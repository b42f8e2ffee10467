//! Jibri's upload (a presigned PUT, then the object checked before the
//! recording is `ready`) and the room's recordings with download URLs.

use serde_json::{Value, json};
use vcare_domain::caller::{Caller, Role};
use vcare_domain::events::{DomainEvent, RECORDING_READY};
use vcare_domain::recordings::{
    JibriUpload, ObjectSeen, Recording, RecordingStatus, UploadRefusal, check_object, may_upload,
};
use vcare_domain::room::{ParticipantRole, Standing};

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
        presented: Option<&[u8]>,
        body: JibriUpload,
    ) -> Result<RecordingUpload, RoomError> {
        crate::check_jitsi_secret(&storage.secret, presented)?;
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
        let recording_id = vcare_domain::ids::prefixed("rec");
        let s3_key = format!("recordings/{}/{}/{recording_id}.mp4", room.clinic_id, room.room_id);
        let presigned = storage
            .s3
            .put_object()
            .bucket(&storage.bucket)
            .key(&s3_key)
            .content_type(&body.content_type)
            .content_length(body.size_bytes as i64)
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
            .ssekms_key_id(&storage.key_id)
            .presigned(storage.presigning(storage.upload_for)?)
            .await
            .map_err(presign_failed)?;
        let recording = Recording {
            recording_id: recording_id.clone(),
            clinic_id: room.clinic_id.clone(),
            room_id: room.room_id.clone(),
            status: RecordingStatus::Uploading,
            content_type: body.content_type,
            size_bytes: body.size_bytes,
            s3_key,
            created_at: now,
            ready_at: None,
            duration_seconds: None,
            hold: false,
            error: None,
        };
        self.care.store.add_recording(&room, &recording).await?;
        let headers = crate::images::upload_headers(&presigned);
        let expires_at = now + chrono::Duration::from_std(storage.upload_for).unwrap_or_default();
        Ok(RecordingUpload { recording_id, url: presigned.uri().to_owned(), headers, expires_at })
    }

    /// Jibri says the upload is done: the object must be there, of the
    /// size and type presigned, encrypted with the recordings key; then
    /// the recording is `ready` with `virtual_care.recording.ready`. A
    /// complete again is the same answer. A wrong object is 409 and
    /// changes nothing.
    pub async fn jibri_complete(
        &self,
        storage: &RecordingStorage,
        presented: Option<&[u8]>,
        recording_id: &str,
    ) -> Result<Recording, RoomError> {
        crate::check_jitsi_secret(&storage.secret, presented)?;
        if !vcare_domain::ids::is_valid_external_id(recording_id) {
            return Err(RoomError::NoSuchRecording);
        }
        let recording = self.care.store.recording_by_id(recording_id).await?.ok_or(RoomError::NoSuchRecording)?;
        if recording.status == RecordingStatus::Ready {
            return Ok(recording);
        }
        let head = storage.s3.head_object().bucket(&storage.bucket).key(&recording.s3_key).send().await;
        let seen = match head {
            Ok(h) => Some(ObjectSeen {
                size_bytes: h.content_length().unwrap_or(-1).max(0) as u64,
                content_type: h.content_type().map(str::to_owned),
                encryption: h.server_side_encryption().map(|e| e.as_str().to_owned()),
                kms_key: h.ssekms_key_id().map(str::to_owned),
            }),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => None,
            Err(e) => {
                tracing::error!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "HeadObject failed");
                return Err(RoomError::RecordingsUnavailable);
            }
        };
        check_object(&recording, seen.as_ref(), &storage.key_id)
            .map_err(|r| RoomError::Conflict(r.detail().to_owned()))?;
        let now = self.care.now();
        let (ready, _) = self
            .care
            .store
            .update_recording(&recording, |current| {
                if current.status == RecordingStatus::Ready {
                    return None;
                }
                let mut next = current.clone();
                next.status = RecordingStatus::Ready;
                next.ready_at = Some(now);
                let data =
                    json!({"roomId": next.room_id, "recordingId": next.recording_id, "sizeBytes": next.size_bytes});
                let event = DomainEvent::new(RECORDING_READY, &next.clinic_id, &next.room_id, now, data);
                Some((next, vec![event]))
            })
            .await?
            .ok_or(RoomError::NoSuchRecording)?;
        Ok(ready)
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
