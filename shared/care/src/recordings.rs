//! Recordings (API.md "Recordings and dial-in"). Consent: a listed
//! participant's yes or no for themself, kept on the room (which decides
//! whether it may be recorded, `Room::may_record`) and, in the same
//! transaction, as a line of their consent history (category
//! `recording`, source `api`). Jibri's upload: a presigned PUT into the
//! recordings bucket, checked (size, type, encryption) before the
//! recording is `ready`; the room's recordings with short download URLs.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_domain::caller::{Caller, Role};
use vcare_domain::events::{DomainEvent, RECORDING_READY};
use vcare_domain::recording::{ConsentRefusal, consent_entry};
use vcare_domain::recordings::{
    JibriUpload, ObjectSeen, Recording, RecordingStatus, UploadRefusal, check_object, may_upload,
};
use vcare_domain::room::{ParticipantRole, Room, Standing};
use vcare_runtime::{ConfigError, Env};
use vcare_store::ConsentStore;

use crate::{RoomError, Rooms};

pub struct Recordings {
    pub care: Rooms,
    consent: ConsentStore,
}

/// A participant's answer as it stands after their request.
pub struct Consented {
    pub room: Room,
    pub user_id: String,
    pub granted: bool,
    pub at: DateTime<Utc>,
}

impl Consented {
    /// The answer, and whether the room may now be recorded (no other
    /// participant's answer is shown).
    pub fn view(&self) -> Value {
        json!({"roomId": self.room.room_id, "userId": self.user_id, "recording": self.granted,
               "at": self.at, "recordingAllowed": self.room.may_record()})
    }
}

impl Recordings {
    /// `TABLE_NAME` and the rooms' settings, `CONSENT_TABLE_NAME`.
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        let care = Rooms::from_env(env, sdk)?;
        let consent =
            ConsentStore::new(care.store.client().clone(), care.store.table(), env.required("CONSENT_TABLE_NAME")?);
        Ok(Self { care, consent })
    }

    /// The caller's answer for themself. A repeat of the answer standing
    /// changes nothing and adds no history line; anyone not listed is 404;
    /// an ended or cancelled room 409.
    pub async fn consent(&self, caller: &Caller, room_id: &str, granted: bool) -> Result<Consented, RoomError> {
        let (room, standing) = self.care.room_for(caller, room_id).await?;
        if !matches!(standing, Standing::Participant(_)) {
            return Err(RoomError::NoSuchRoom);
        }
        let user = caller.user_id.as_str();
        let now = self.care.now();
        let refused = |r| match r {
            ConsentRefusal::NotListed => RoomError::NoSuchRoom,
            ConsentRefusal::Closed => {
                RoomError::Conflict(format!("the room is {}: its recording is settled", room.status.as_str()))
            }
        };
        let room = match room.with_recording_consent(user, granted, now).map_err(refused)? {
            None => room,
            Some(_) => {
                let line = self.consent.history_line(&room.clinic_id, user, &consent_entry(user, granted, now))?;
                let (room, _) = self
                    .care
                    .store
                    .update_also(&room.clinic_id, &room.room_id, &[line], |current| {
                        current.with_recording_consent(user, granted, now).ok()?.map(|next| (next, vec![]))
                    })
                    .await?
                    .ok_or(RoomError::NoSuchRoom)?;
                room
            }
        };
        let standing = room.recording_consent(user).ok_or(RoomError::NoSuchParticipant)?;
        Ok(Consented { user_id: user.to_owned(), granted: standing.granted, at: standing.at, room })
    }
}

/// Where recordings go and who may fetch them.
pub struct RecordingStorage {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key_id: String,
    upload_for: std::time::Duration,
    download_for: std::time::Duration,
    /// Clinics whose patients may fetch their consultations' recordings
    /// (`CLINIC_PATIENT_RECORDING_ACCESS`, `c-1;c-2`).
    patients_may_fetch: Vec<String>,
    /// Jibri's `X-Jitsi-Shared-Secret` (the Jitsi webhook secret).
    secret: vcare_jitsi::WebhookSecret,
}

/// A presigned recording upload.
pub struct RecordingUpload {
    pub recording_id: String,
    pub url: String,
    pub headers: serde_json::Map<String, Value>,
    pub expires_at: DateTime<Utc>,
}

fn presign_failed<E: std::fmt::Display>(e: E) -> RoomError {
    tracing::error!(error = %e, "presigning a recording URL failed");
    RoomError::RecordingsUnavailable
}

impl RecordingStorage {
    /// `RECORDING_BUCKET`, `RECORDING_KEY_ID` (the key uploads must use),
    /// `UPLOAD_URL_SECONDS` and `DOWNLOAD_URL_SECONDS` (each at most 900),
    /// `CLINIC_PATIENT_RECORDING_ACCESS`, and the Jitsi webhook secret.
    pub async fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, vcare_runtime::Error> {
        let max = crate::images::MAX_UPLOAD_SECONDS;
        Ok(Self {
            s3: aws_sdk_s3::Client::new(sdk),
            bucket: env.required("RECORDING_BUCKET")?,
            key_id: env.required("RECORDING_KEY_ID")?,
            upload_for: std::time::Duration::from_secs(env.bounded("UPLOAD_URL_SECONDS", max, 1, max)?),
            download_for: std::time::Duration::from_secs(env.bounded("DOWNLOAD_URL_SECONDS", 300, 1, max)?),
            patients_may_fetch: env
                .get("CLINIC_PATIENT_RECORDING_ACCESS")
                .unwrap_or("")
                .split([';', ','])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            secret: crate::webhook_secret(env, sdk).await?,
        })
    }

    fn presigning(&self, lifetime: std::time::Duration) -> Result<aws_sdk_s3::presigning::PresigningConfig, RoomError> {
        aws_sdk_s3::presigning::PresigningConfig::expires_in(lifetime).map_err(presign_failed)
    }
}

impl Recordings {
    /// With the recordings' storage (the consent route alone needs none).
    pub async fn with_storage(env: &Env, sdk: &SdkConfig) -> Result<(Self, RecordingStorage), vcare_runtime::Error> {
        Ok((Self::from_env(env, sdk)?, RecordingStorage::from_env(env, sdk).await?))
    }

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
