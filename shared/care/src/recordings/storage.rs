//! The recordings bucket: presigning, what S3 says of an object, where
//! LiveKit egress writes, how long each clinic keeps recordings, and
//! deleting every version of an object (which S3's Object Lock refuses
//! under legal hold).

use chrono::{DateTime, Utc};
use serde_json::Value;
use vcare_aws::SdkConfig;
use vcare_domain::due::{Due, DueKind};
use vcare_domain::recordings::{MAX_PART_BYTES, MIN_PART_BYTES, ObjectSeen, RetentionPolicy};
use vcare_livekit::S3Target;
use vcare_runtime::{ConfigError, Env};

use crate::RoomError;

/// Where recordings go and who may fetch them.
pub struct RecordingStorage {
    pub(super) s3: aws_sdk_s3::Client,
    pub(super) bucket: String,
    pub(super) key_id: String,
    pub(super) upload_for: std::time::Duration,
    /// Recordings larger than this go in parts of this size.
    pub(super) part_bytes: u64,
    pub(super) download_for: std::time::Duration,
    /// Clinics whose patients may fetch their consultations' recordings
    /// (`CLINIC_PATIENT_RECORDING_ACCESS`, `c-1;c-2`).
    pub(super) patients_may_fetch: Vec<String>,
    pub(super) retention: RetentionPolicy,
    /// Where OpenVidu's egress writes (this bucket).
    pub(super) egress: S3Target,
}

/// A recording upload: one presigned PUT (its URL and headers), or the
/// parts of a multipart upload (each part's PUT presigned when asked).
pub struct RecordingUpload {
    pub recording_id: String,
    pub single: Option<(String, serde_json::Map<String, Value>)>,
    pub parts: Vec<vcare_domain::recordings::Part>,
    pub expires_at: DateTime<Utc>,
}

/// `c-1;c-2`: clinic ids, each well-formed (a typo would silently match no clinic).
fn patients_may_fetch(list: &str) -> Result<Vec<String>, ConfigError> {
    list.split([';', ','])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            vcare_domain::caller::is_clinic_id(c).then(|| c.to_owned()).ok_or_else(|| ConfigError::Invalid {
                name: "CLINIC_PATIENT_RECORDING_ACCESS".into(),
                reason: "clinic ids separated by ;".into(),
            })
        })
        .collect()
}

pub(super) fn presign_failed<E: std::fmt::Display>(e: E) -> RoomError {
    tracing::error!(error = %e, "presigning a recording URL failed");
    RoomError::RecordingsUnavailable
}

impl RecordingStorage {
    /// `RECORDING_BUCKET`, `RECORDING_KEY_ID` (the key uploads must use),
    /// `UPLOAD_URL_SECONDS` and `DOWNLOAD_URL_SECONDS` (each at most 900),
    /// `RECORDING_PART_BYTES` (1 GiB: larger recordings go in parts of
    /// it), `CLINIC_PATIENT_RECORDING_ACCESS`, `RECORDING_RETENTION_DAYS` (365)
    /// and `CLINIC_RECORDING_RETENTION_DAYS`, and `EGRESS_S3_ENDPOINT`
    /// (only an S3-compatible store's; unset on AWS). Nothing is opened.
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        let max = crate::images::MAX_UPLOAD_SECONDS;
        let bucket = env.required("RECORDING_BUCKET")?;
        let retention = RetentionPolicy::parse(
            env.get("RECORDING_RETENTION_DAYS").unwrap_or("365"),
            env.get("CLINIC_RECORDING_RETENTION_DAYS").unwrap_or(""),
        )
        .map_err(|reason| ConfigError::Invalid { name: "recording retention".into(), reason })?;
        Ok(Self {
            s3: aws_sdk_s3::Client::new(sdk),
            egress: S3Target {
                bucket: bucket.clone(),
                region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
                endpoint: env.get("EGRESS_S3_ENDPOINT").filter(|e| !e.is_empty()).map(str::to_owned),
            },
            bucket,
            key_id: env.required("RECORDING_KEY_ID")?,
            upload_for: std::time::Duration::from_secs(env.bounded("UPLOAD_URL_SECONDS", max, 1, max)?),
            part_bytes: env.bounded("RECORDING_PART_BYTES", 1 << 30, MIN_PART_BYTES, MAX_PART_BYTES)?,
            download_for: std::time::Duration::from_secs(env.bounded("DOWNLOAD_URL_SECONDS", 300, 1, max)?),
            patients_may_fetch: patients_may_fetch(env.get("CLINIC_PATIENT_RECORDING_ACCESS").unwrap_or(""))?,
            retention,
        })
    }

    /// The due entry that deletes `recording` (ready or failed at `now`)
    /// when its clinic's retention runs out.
    pub(super) fn expiry(&self, recording: &vcare_domain::recordings::Recording, now: DateTime<Utc>) -> Due {
        Due {
            at: self.retention.expires(&recording.clinic_id, now),
            kind: DueKind::RecordingExpiry,
            clinic: recording.clinic_id.clone(),
            id: recording.recording_id.clone(),
        }
    }

    /// What S3 says of `key` (`None`: no such object).
    pub(super) async fn head(&self, key: &str) -> Result<Option<ObjectSeen>, RoomError> {
        match self.s3.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(h) => Ok(Some(ObjectSeen {
                size_bytes: h.content_length().unwrap_or(-1).max(0) as u64,
                content_type: h.content_type().map(str::to_owned),
                encryption: h.server_side_encryption().map(|e| e.as_str().to_owned()),
                kms_key: h.ssekms_key_id().map(str::to_owned),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => {
                tracing::error!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "HeadObject failed");
                Err(RoomError::RecordingsUnavailable)
            }
        }
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
