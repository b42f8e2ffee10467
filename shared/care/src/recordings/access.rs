//! Legal hold and deletion, for a clinic's admins.

use serde_json::json;
use vcare_domain::caller::{Caller, Role};
use vcare_domain::events::{DomainEvent, RECORDING_DELETED};
use vcare_domain::recordings::{DeleteRefusal, Recording, RecordingStatus, expiry_due};

use super::{RecordingStorage, Recordings};
use crate::RoomError;

impl Recordings {
    /// A recording of the caller's clinic, for its clinic-admins (another
    /// clinic's is 404, another role 403).
    async fn for_admin(&self, caller: &Caller, recording_id: &str) -> Result<Recording, RoomError> {
        if !vcare_domain::ids::is_valid_external_id(recording_id) {
            return Err(RoomError::NoSuchRecording);
        }
        let recording = self
            .care
            .store
            .recording_by_id(recording_id)
            .await?
            .filter(|r| r.clinic_id == caller.clinic_id)
            .ok_or(RoomError::NoSuchRecording)?;
        if !caller.has_role(Role::ClinicAdmin) {
            return Err(RoomError::AdminsOnly);
        }
        Ok(recording)
    }

    /// Puts a recording under legal hold or lifts it: S3's Object Lock
    /// legal hold on the object first (S3 then refuses any delete of it,
    /// whoever asks), then the record. Lifting a hold on a recording
    /// whose object is gone only changes the record.
    pub async fn set_hold(
        &self,
        storage: &RecordingStorage,
        caller: &Caller,
        recording_id: &str,
        hold: bool,
    ) -> Result<Recording, RoomError> {
        let recording = self.for_admin(caller, recording_id).await?;
        if recording.status == RecordingStatus::Deleted {
            return Err(RoomError::Conflict("the recording is deleted".into()));
        }
        if recording.hold == hold {
            return Ok(recording);
        }
        if recording.status == RecordingStatus::Ready {
            use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus};
            let status = if hold { ObjectLockLegalHoldStatus::On } else { ObjectLockLegalHoldStatus::Off };
            storage
                .s3
                .put_object_legal_hold()
                .bucket(&storage.bucket)
                .key(&recording.s3_key)
                .legal_hold(ObjectLockLegalHold::builder().status(status).build())
                .send()
                .await
                .map_err(|e| {
                    tracing::error!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "PutObjectLegalHold failed");
                    RoomError::RecordingsUnavailable
                })?;
        }
        // A hold lifted puts the recording back in the retention sweep's
        // index (at once if its retention ran out while held).
        let now = self.care.now();
        let lifted = Recording { hold: false, ..recording.clone() };
        let also = match expiry_due(&lifted, &storage.retention, now).filter(|_| !hold) {
            Some(due) => vec![self.care.due().put(&due)?],
            None => vec![],
        };
        let (held, _) = self
            .care
            .store
            .update_recording_also(&recording, None, &also, |current| {
                (current.hold != hold).then(|| (Recording { hold, ..current.clone() }, vec![]))
            })
            .await?
            .ok_or(RoomError::NoSuchRecording)?;
        Ok(held)
    }

    /// Deletes a recording that is not under hold: every version of its
    /// object (S3 refuses one under legal hold: 409), then the record is
    /// `deleted` with `virtual_care.recording.deleted`.
    pub async fn delete(
        &self,
        storage: &RecordingStorage,
        caller: &Caller,
        recording_id: &str,
    ) -> Result<(), RoomError> {
        let recording = self.for_admin(caller, recording_id).await?;
        recording.may_delete().map_err(|r| match r {
            DeleteRefusal::UnderHold => RoomError::Conflict("the recording is under legal hold".into()),
            DeleteRefusal::AlreadyDeleted => RoomError::NoSuchRecording,
        })?;
        self.remove_recording(storage, &recording, Some(&caller.user_id)).await
    }

    /// Deletes every version of the recording's object, then marks it
    /// `deleted` with `virtual_care.recording.deleted`: by a clinic-admin
    /// (`by`, reason `deleted`) or by the retention sweep (reason `retention`).
    pub(super) async fn remove_recording(
        &self,
        storage: &RecordingStorage,
        recording: &Recording,
        by: Option<&str>,
    ) -> Result<(), RoomError> {
        storage.delete_object(&recording.s3_key).await?;
        let now = self.care.now();
        self.care
            .store
            .update_recording(recording, |current| {
                current.may_delete().ok()?;
                let next = Recording { status: RecordingStatus::Deleted, ..current.clone() };
                let mut data = json!({"roomId": next.room_id, "recordingId": next.recording_id,
                                      "reason": if by.is_some() { "deleted" } else { "retention" }});
                if let Some(by) = by {
                    data["deletedBy"] = json!(by);
                }
                Some((
                    next.clone(),
                    vec![DomainEvent::new(RECORDING_DELETED, &next.clinic_id, &next.room_id, now, data)],
                ))
            })
            .await?;
        Ok(())
    }
}
