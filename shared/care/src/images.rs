//! Images shared into a room: a presigned S3 PUT (at most 15 minutes)
//! whose signature binds the content type, the exact length and SSE-KMS
//! with the images key — an upload without them, or to another key, fails;
//! and the room's images with short-lived download URLs. Participants only.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::ServerSideEncryption;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_domain::caller::Caller;
use vcare_domain::events::{DomainEvent, IMAGE_SHARED};
use vcare_domain::ids;
use vcare_domain::requests::UploadRequest;
use vcare_domain::room_records::ImageRecord;
use vcare_runtime::{ConfigError, Env};

use crate::{RoomError, Rooms, participant_only};

pub const MAX_UPLOAD_SECONDS: u64 = 15 * 60;

pub struct Images {
    pub care: Rooms,
    s3: aws_sdk_s3::Client,
    bucket: String,
    key_id: String,
    upload_for: Duration,
    download_for: Duration,
}

/// A presigned upload: where to PUT, with which headers, until when.
pub struct Upload {
    pub image_id: String,
    pub url: String,
    pub headers: serde_json::Map<String, Value>,
    pub expires_at: DateTime<Utc>,
}

/// The headers a presigned PUT must send (all it signed but `host`).
pub(crate) fn upload_headers(presigned: &aws_sdk_s3::presigning::PresignedRequest) -> serde_json::Map<String, Value> {
    presigned
        .headers()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect()
}

fn presign_failed<E: std::fmt::Display>(e: E) -> RoomError {
    tracing::error!(error = %e, "presigning failed");
    RoomError::ImagesUnavailable
}

impl Images {
    /// `IMAGE_BUCKET`, `IMAGE_KEY_ID` (the KMS key uploads must use),
    /// `UPLOAD_URL_SECONDS` (default and at most 900), `DOWNLOAD_URL_SECONDS`
    /// (default 300).
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        let upload = env.bounded("UPLOAD_URL_SECONDS", MAX_UPLOAD_SECONDS, 1, MAX_UPLOAD_SECONDS)?;
        let download = env.bounded("DOWNLOAD_URL_SECONDS", 300, 1, 3600)?;
        Ok(Self {
            care: Rooms::from_env(env, sdk)?,
            s3: aws_sdk_s3::Client::new(sdk),
            bucket: env.required("IMAGE_BUCKET")?,
            key_id: env.required("IMAGE_KEY_ID")?,
            upload_for: Duration::from_secs(upload),
            download_for: Duration::from_secs(download),
        })
    }

    fn presigning(&self, lifetime: Duration) -> Result<PresigningConfig, RoomError> {
        PresigningConfig::expires_in(lifetime).map_err(presign_failed)
    }

    /// A participant's upload into the room, recorded with its event.
    pub async fn upload(&self, caller: &Caller, room_id: &str, body: UploadRequest) -> Result<Upload, RoomError> {
        let body = body.validate()?;
        let (room, standing) = self.care.room_for(caller, room_id).await?;
        participant_only(standing)?;
        let image_id = ids::prefixed("img");
        let key = format!("rooms/{}/{}/{image_id}", room.clinic_id, room.room_id);
        let now = self.care.now();
        let presigned = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(body.content_type.as_str())
            .content_length(body.size_bytes as i64)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.key_id)
            .presigned(self.presigning(self.upload_for)?)
            .await
            .map_err(presign_failed)?;
        let headers = upload_headers(&presigned);
        let event = DomainEvent::new(
            IMAGE_SHARED,
            &room.clinic_id,
            &room.room_id,
            now,
            json!({"roomId": room.room_id, "imageId": image_id, "contentType": body.content_type.as_str(),
                   "sizeBytes": body.size_bytes, "sharedBy": caller.user_id}),
        );
        let record = ImageRecord {
            image_id: image_id.clone(),
            content_type: body.content_type.as_str().to_owned(),
            size_bytes: body.size_bytes,
            s3_key: key,
            shared_by: caller.user_id.clone(),
            created_at: now,
        };
        self.care.store.add_image(&room, &record, &event).await?;
        let expires_at = now + chrono::Duration::from_std(self.upload_for).unwrap_or_default();
        Ok(Upload { image_id, url: presigned.uri().to_owned(), headers, expires_at })
    }

    /// The room's images as the API shows them, each with a download URL.
    pub async fn list(&self, caller: &Caller, room_id: &str) -> Result<Vec<Value>, RoomError> {
        let (room, standing) = self.care.room_for(caller, room_id).await?;
        participant_only(standing)?;
        let records = self.care.store.images(&room).await?;
        let expires_at = self.care.now() + chrono::Duration::from_std(self.download_for).unwrap_or_default();
        let mut items = Vec::with_capacity(records.len());
        for r in records {
            let url = self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(&r.s3_key)
                .presigned(self.presigning(self.download_for)?)
                .await
                .map_err(presign_failed)?;
            items.push(json!({
                "imageId": r.image_id, "contentType": r.content_type, "sizeBytes": r.size_bytes,
                "sharedBy": r.shared_by, "createdAt": r.created_at,
                "downloadUrl": url.uri(), "expiresAt": expires_at,
            }));
        }
        Ok(items)
    }
}
