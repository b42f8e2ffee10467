//! Jibri's large recordings, in parts (S3 multipart): the upload is
//! created with the type and SSE-KMS under the recordings key (every part
//! is encrypted so, whoever uploads it); each part's PUT is presigned when
//! the finalize script asks for it (binding its exact size, for at most
//! 15 minutes, so a long upload never holds a stale URL); complete names
//! every part's ETag once. The bucket's lifecycle aborts an upload left
//! unfinished after a day; vcare presigns its parts for [`PARTS_FOR`].

use chrono::Duration;
use vcare_domain::recordings::{JibriComplete, Part, Recording, RecordingStatus};
use vcare_jitsi::WebhookSecret;
use vcare_runtime::metrics;

use super::storage::presign_failed;
use super::{RecordingStorage, RecordingUpload, Recordings};
use crate::RoomError;

/// How long after its start a multipart upload's parts are presigned.
pub const PARTS_FOR: Duration = Duration::hours(23);

/// One part's presigned PUT.
pub struct PartUpload {
    pub url: String,
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

fn s3_failed(what: &'static str) -> impl Fn(String) -> RoomError {
    move |e| {
        tracing::error!(error = %e, "{what} failed");
        RoomError::RecordingsUnavailable
    }
}

impl Recordings {
    /// Creates the multipart upload and the recording that names it.
    pub(super) async fn start_parts(
        &self,
        storage: &RecordingStorage,
        room: &vcare_domain::room::Room,
        recording: Recording,
        part_bytes: u64,
        parts: Vec<Part>,
    ) -> Result<RecordingUpload, RoomError> {
        let created = storage
            .s3
            .create_multipart_upload()
            .bucket(&storage.bucket)
            .key(&recording.s3_key)
            .content_type(&recording.content_type)
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
            .ssekms_key_id(&storage.key_id)
            .send()
            .await
            .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())
            .map_err(s3_failed("CreateMultipartUpload"))?;
        let upload_id = created.upload_id().ok_or(RoomError::RecordingsUnavailable)?.to_owned();
        let recording = Recording { upload_id: Some(upload_id), part_bytes: Some(part_bytes), ..recording };
        self.care.store.add_recording(room, &recording, &[]).await?;
        metrics::count("RecordingUploadsInParts", &[]);
        Ok(RecordingUpload {
            expires_at: recording.created_at + PARTS_FOR,
            recording_id: recording.recording_id,
            single: None,
            parts,
        })
    }

    /// `POST .../jibri/recordings/{id}/parts/{n}`: part `n`'s PUT, binding
    /// its size. 404 for a part the upload does not have; 409 once the
    /// upload is complete or older than [`PARTS_FOR`].
    pub async fn jibri_part(
        &self,
        storage: &RecordingStorage,
        secret: &WebhookSecret,
        presented: Option<&[u8]>,
        recording_id: &str,
        number: &str,
    ) -> Result<PartUpload, RoomError> {
        crate::check_jitsi_secret(secret, presented)?;
        if !vcare_domain::ids::is_valid_external_id(recording_id) {
            return Err(RoomError::NoSuchRecording);
        }
        let recording = self.care.store.recording_by_id(recording_id).await?.ok_or(RoomError::NoSuchRecording)?;
        let upload_id = recording.upload_id.clone().ok_or(RoomError::NoSuchRecording)?;
        let part = number
            .parse::<u32>()
            .ok()
            .and_then(|n| recording.parts().into_iter().find(|p| p.number == n))
            .ok_or(RoomError::NoSuchRecording)?;
        let now = self.care.now();
        if recording.status != RecordingStatus::Uploading || now > recording.created_at + PARTS_FOR {
            return Err(RoomError::Conflict("the upload is complete, or too old: ask for a new one".into()));
        }
        let presigned = storage
            .s3
            .upload_part()
            .bucket(&storage.bucket)
            .key(&recording.s3_key)
            .upload_id(upload_id)
            .part_number(part.number as i32)
            .content_length(part.size_bytes as i64)
            .presigned(storage.presigning(storage.upload_for)?)
            .await
            .map_err(presign_failed)?;
        Ok(PartUpload {
            url: presigned.uri().to_owned(),
            headers: crate::images::upload_headers(&presigned),
            expires_at: now + Duration::from_std(storage.upload_for).unwrap_or_default(),
        })
    }

    /// Completes the multipart upload from the parts Jibri names. S3
    /// refusing them (a wrong ETag, a part missing or too small) is 409;
    /// an upload S3 no longer has (completed before a lost answer) goes on
    /// to the object's check.
    pub(super) async fn complete_parts(
        &self,
        storage: &RecordingStorage,
        recording: &Recording,
        body: &JibriComplete,
    ) -> Result<(), RoomError> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let parts = body
            .parts
            .iter()
            .map(|p| CompletedPart::builder().part_number(p.part_number as i32).e_tag(&p.etag).build())
            .collect();
        let done = storage
            .s3
            .complete_multipart_upload()
            .bucket(&storage.bucket)
            .key(&recording.s3_key)
            .upload_id(recording.upload_id.as_deref().unwrap_or_default())
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error().and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::code(s)) {
                Some("NoSuchUpload") => Ok(()),
                Some("InvalidPart" | "InvalidPartOrder" | "EntityTooSmall") => {
                    Err(RoomError::Conflict("the parts named are not the parts uploaded".into()))
                }
                _ => Err(s3_failed("CompleteMultipartUpload")(aws_sdk_s3::error::DisplayErrorContext(e).to_string())),
            },
        }
    }
}
