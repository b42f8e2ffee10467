//! LiveKit's Egress service: a room-composite MP4 written straight to the
//! recordings bucket, its stop, and its state by id (what the recordings
//! sweep asks when no `egress_ended` webhook came).
//!
//! The egress host writes with its own AWS identity (no keys travel in the
//! request: `access_key` and `secret` are left empty, so LiveKit's uploader
//! takes its default credentials), and the bucket's default encryption
//! (SSE-KMS with the recordings key) encrypts what it writes.

use serde_json::{Value, json};
use vcare_domain::video::livekit::ServerCall;

use crate::{RoomService, TwirpError};

/// Where egress writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Target {
    pub bucket: String,
    pub region: String,
    /// An S3-compatible endpoint (the local stack's); `None` on AWS.
    pub endpoint: Option<String>,
}

impl RoomService {
    /// Starts recording `room` (room composite, speaker layout, MP4) into
    /// `target` at `filepath`; LiveKit's egress id. Made once: a start
    /// retried after a lost answer could record twice, so a timeout is
    /// `Unreachable` and the caller's sweep finds the egress by its file.
    pub async fn start_egress(&self, room: &str, filepath: &str, target: &S3Target) -> Result<String, TwirpError> {
        let mut s3 = json!({"bucket": target.bucket, "region": target.region});
        if let Some(endpoint) = &target.endpoint {
            s3["endpoint"] = json!(endpoint);
            s3["force_path_style"] = json!(true);
        }
        let body = json!({
            "room_name": room,
            "layout": "speaker",
            "file_outputs": [{"file_type": "MP4", "filepath": filepath, "disable_manifest": true, "s3": s3}],
        });
        let info = self.call_with(ServerCall::StartRoomCompositeEgress, body, 1).await?;
        info.get("egress_id")
            .or_else(|| info.get("egressId"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(TwirpError::Unreachable("an EgressInfo without its id"))
    }

    /// Stops an egress; one no longer running (LiveKit: `not_found` or
    /// `failed_precondition`) is done.
    pub async fn stop_egress(&self, egress_id: &str) -> Result<(), TwirpError> {
        match self.call(ServerCall::StopEgress, json!({"egress_id": egress_id})).await {
            Err(TwirpError::Answered { code, .. }) if code == "not_found" || code == "failed_precondition" => Ok(()),
            other => other.map(drop),
        }
    }

    /// The room's egresses as LiveKit lists them (`EgressInfo` JSON),
    /// for the sweep to find one by id or by its file.
    pub async fn list_egress(&self, room: &str) -> Result<Vec<Value>, TwirpError> {
        let answer = self.call(ServerCall::ListEgress, json!({"room_name": room})).await?;
        Ok(answer.get("items").and_then(Value::as_array).cloned().unwrap_or_default())
    }
}
