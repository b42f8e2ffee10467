//! The recordings' entries in the due index: deleting a recording whose
//! clinic's retention ran out (`recording-expiry`, unless under legal
//! hold), and settling an OpenVidu recording whose `egress_ended` webhook
//! never came (`egress-check`).

use chrono::{DateTime, Utc};
use vcare_care::recordings::{EgressChecked, Expired};
use vcare_comms::DueDone;
use vcare_domain::due::{Due, DueKind, Verdict};
use vcare_runtime::{Error, metrics};

use crate::{Done, Scheduler};

impl Scheduler {
    pub(crate) async fn recording(&self, due: &Due, verdict: Verdict, now: DateTime<Utc>) -> Result<Done, Error> {
        if verdict == Verdict::Wait {
            return Ok(Done::Due(DueDone::Later));
        }
        let Some((recordings, storage)) = &self.recordings else {
            // A deployment without the recordings bucket has no such entries.
            return Err("a recording's due entry, but RECORDING_BUCKET is not set".into());
        };
        match due.kind {
            DueKind::RecordingExpiry => {
                let expired = recordings.expire(storage, due, now).await.map_err(|e| Error::from(e.to_string()))?;
                let outcome = match expired {
                    Expired::Deleted => "deleted",
                    Expired::Held => "held",
                    Expired::Done => "done",
                };
                metrics::count("RecordingsExpired", &[("outcome", outcome)]);
                Ok(Done::Recordings(usize::from(expired == Expired::Deleted)))
            }
            _ => {
                let Some(openvidu) = self.tokens.providers.openvidu.as_deref() else {
                    return Err("an egress check, but OPENVIDU_URL is not set".into());
                };
                let checked = recordings
                    .check_egress(storage, openvidu, due, now)
                    .await
                    .map_err(|e| Error::from(e.to_string()))?;
                if checked == EgressChecked::Settled {
                    tracing::info!(recording_id = %due.id, "an egress without its webhook was settled");
                    metrics::count("EgressesSettled", &[]);
                }
                Ok(Done::Recordings(usize::from(checked == EgressChecked::Settled)))
            }
        }
    }
}
