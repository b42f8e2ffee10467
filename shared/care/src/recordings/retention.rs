//! The retention sweep: a ready (or failed) recording's due entry comes
//! when its clinic's `RecordingRetentionDays` run out; its object's every
//! version is deleted and it becomes `deleted` (reason `retention`) —
//! unless it is under legal hold, which S3 would refuse anyway: then the
//! entry is dropped, and lifting the hold writes it again.

use chrono::{DateTime, Utc};
use vcare_domain::due::Due;
use vcare_domain::recordings::RecordingStatus;

use super::{RecordingStorage, Recordings};
use crate::RoomError;

/// What the sweep did with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    Deleted,
    /// Under legal hold: kept.
    Held,
    /// Already deleted, or gone.
    Done,
}

impl Recordings {
    pub async fn expire(
        &self,
        storage: &RecordingStorage,
        due: &Due,
        _now: DateTime<Utc>,
    ) -> Result<Expired, RoomError> {
        let index = self.care.due();
        let found = self.care.store.recording_by_id(&due.id).await?.filter(|r| r.clinic_id == due.clinic);
        let outcome = match found {
            None => Expired::Done,
            Some(r) if r.hold => Expired::Held,
            Some(r) if matches!(r.status, RecordingStatus::Ready | RecordingStatus::Failed) => {
                match self.remove_recording(storage, &r, None).await {
                    Ok(()) => Expired::Deleted,
                    // S3 holds it though the record does not: keep it, say so.
                    Err(RoomError::Conflict(_)) => {
                        tracing::error!(recording_id = %r.recording_id, "S3 refused an expired recording's delete: a legal hold the record does not show");
                        Expired::Held
                    }
                    Err(e) => return Err(e),
                }
            }
            Some(_) => Expired::Done,
        };
        index.remove(due).await?;
        Ok(outcome)
    }
}
