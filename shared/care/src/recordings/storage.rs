//! The recordings bucket: presigning, and deleting every version of an
//! object (which S3's Object Lock refuses under legal hold).

use chrono::{DateTime, Utc};
use serde_json::Value;
use vcare_aws::SdkConfig;
use vcare_runtime::Env;

use crate::RoomError;

/// Where recordings go and who may fetch them.
pub struct RecordingStorage {
    pub(super) s3: aws_sdk_s3::Client,
    pub(super) bucket: String,
    pub(super) key_id: String,
    pub(super) upload_for: std::time::Duration,
    pub(super) download_for: std::time::Duration,
    /// Clinics whose patients may fetch their consultations' recordings
    /// (`CLINIC_PATIENT_RECORDING_ACCESS`, `c-1;c-2`).
    pub(super) patients_may_fetch: Vec<String>,
    /// Jibri's `X-Jitsi-Shared-Secret` (the Jitsi webhook secret).
    pub(super) secret: vcare_jitsi::WebhookSecret,
}

/// A presigned recording upload.
pub struct RecordingUpload {
    pub recording_id: String,
    pub url: String,
    pub headers: serde_json::Map<String, Value>,
    pub expires_at: DateTime<Utc>,
}

pub(super) fn presign_failed<E: std::fmt::Display>(e: E) -> RoomError {
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

    pub(super) fn presigning(
        &self,
        lifetime: std::time::Duration,
    ) -> Result<aws_sdk_s3::presigning::PresigningConfig, RoomError> {
        aws_sdk_s3::presigning::PresigningConfig::expires_in(lifetime).map_err(presign_failed)
    }
}

impl RecordingStorage {
    /// Deletes every version (and delete marker) of `key`. A version under
    /// legal hold makes S3 refuse: 409, and the versions not yet deleted
    /// stay.
    pub(super) async fn delete_object(&self, key: &str) -> Result<(), RoomError> {
        let unavailable = |what: &'static str| {
            move |e: String| {
                tracing::error!(error = %e, "{what} failed");
                RoomError::RecordingsUnavailable
            }
        };
        let listed = self
            .s3
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())
            .map_err(unavailable("ListObjectVersions"))?;
        let versions = listed
            .versions()
            .iter()
            .filter_map(|v| Some((v.key()?, v.version_id()?)))
            .chain(listed.delete_markers().iter().filter_map(|m| Some((m.key()?, m.version_id()?))))
            .filter(|(k, _)| *k == key);
        for (k, version) in versions {
            let deleted = self.s3.delete_object().bucket(&self.bucket).key(k).version_id(version).send().await;
            if let Err(e) = deleted {
                let locked = e.raw_response().is_some_and(|r| r.status().as_u16() == 403);
                if locked {
                    return Err(RoomError::Conflict("the recording is under legal hold".into()));
                }
                return Err(unavailable("DeleteObject")(aws_sdk_s3::error::DisplayErrorContext(e).to_string()));
            }
        }
        Ok(())
    }
}
