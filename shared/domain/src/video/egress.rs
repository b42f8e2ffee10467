//! LiveKit's egress (OpenVidu's recordings): the `EgressInfo` its
//! `egress_*` webhooks and its `ListEgress` answer carry (protojson:
//! lowerCamelCase, also read as snake_case; int64 as strings, durations in
//! nanoseconds), and what vcare makes of its status.

use serde_json::Value;

use crate::jitsi::Refused;

/// What vcare reads of an egress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressInfo {
    pub egress_id: String,
    pub room_name: String,
    pub status: EgressStatus,
    /// LiveKit's error text, bounded and without control characters.
    pub error: Option<String>,
    /// The first file result (vcare asks for one MP4).
    pub file: Option<EgressFile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressFile {
    pub filename: String,
    pub size_bytes: Option<u64>,
    pub duration_seconds: Option<u64>,
}

/// LiveKit's `EgressStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EgressStatus {
    Starting,
    Active,
    Ending,
    Complete,
    Failed,
    Aborted,
    LimitReached,
}

impl EgressStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "EGRESS_STARTING" => Self::Starting,
            "EGRESS_ACTIVE" => Self::Active,
            "EGRESS_ENDING" => Self::Ending,
            "EGRESS_COMPLETE" => Self::Complete,
            "EGRESS_FAILED" => Self::Failed,
            "EGRESS_ABORTED" => Self::Aborted,
            "EGRESS_LIMIT_REACHED" => Self::LimitReached,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "EGRESS_STARTING",
            Self::Active => "EGRESS_ACTIVE",
            Self::Ending => "EGRESS_ENDING",
            Self::Complete => "EGRESS_COMPLETE",
            Self::Failed => "EGRESS_FAILED",
            Self::Aborted => "EGRESS_ABORTED",
            Self::LimitReached => "EGRESS_LIMIT_REACHED",
        }
    }

    /// Whether the egress is over (nothing more will come of it).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Complete | Self::Failed | Self::Aborted | Self::LimitReached)
    }
}

/// The longest error text kept.
pub const MAX_ERROR_CHARS: usize = 200;

fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake)).filter(|v| !v.is_null())
}

fn text(v: &Value, camel: &str, snake: &str) -> Option<String> {
    field(v, camel, snake).and_then(Value::as_str).map(str::to_owned)
}

/// An int64 field (the same in both spellings) as protojson writes it (a
/// string), or as a number.
fn int64(v: &Value, name: &str, detail: &'static str) -> Result<Option<u64>, Refused> {
    let bad = Refused { status: 400, detail };
    match field(v, name, name) {
        None => Ok(None),
        Some(Value::String(s)) => s.parse::<u64>().map(Some).map_err(|_| bad),
        Some(n) => n.as_u64().map(Some).ok_or(bad),
    }
}

impl EgressInfo {
    pub fn parse(v: &Value) -> Result<Self, Refused> {
        let egress_id = text(v, "egressId", "egress_id")
            .filter(|id| !id.is_empty() && id.len() <= 64)
            .ok_or(Refused { status: 400, detail: "egressInfo.egressId is required" })?;
        // protojson omits the zero value: EGRESS_STARTING.
        let status = match field(v, "status", "status") {
            None => EgressStatus::Starting,
            Some(s) => s
                .as_str()
                .and_then(EgressStatus::parse)
                .ok_or(Refused { status: 400, detail: "egressInfo.status: an EgressStatus" })?,
        };
        let error = text(v, "error", "error")
            .map(|e| e.chars().filter(|c| !c.is_control()).take(MAX_ERROR_CHARS).collect::<String>())
            .filter(|e| !e.is_empty());
        let file = match field(v, "fileResults", "file_results").and_then(Value::as_array).and_then(|a| a.first()) {
            None => None,
            Some(f) => Some(EgressFile {
                filename: text(f, "filename", "filename").unwrap_or_default(),
                size_bytes: int64(f, "size", "fileResults.size: bytes")?,
                duration_seconds: int64(f, "duration", "fileResults.duration: nanoseconds")?
                    .map(|ns| ns / 1_000_000_000 + u64::from(ns % 1_000_000_000 >= 500_000_000)),
            }),
        };
        Ok(Self { egress_id, room_name: text(v, "roomName", "room_name").unwrap_or_default(), status, error, file })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_ended_egress_says_its_file_with_nanoseconds_as_strings() {
        let info = EgressInfo::parse(&json!({
            "egressId": "EG_abc", "roomName": "vc-1", "status": "EGRESS_COMPLETE",
            "startedAt": "1796119900000000000", "endedAt": "1796121700000000000",
            "fileResults": [{"filename": "recordings/c1/rm_1/rec_1.mp4", "size": "7340032",
                             "duration": "1799600000000", "location": "https://s3/..."}]
        }))
        .unwrap();
        assert_eq!(info.status, EgressStatus::Complete);
        let file = info.file.unwrap();
        assert_eq!((file.size_bytes, file.duration_seconds), (Some(7_340_032), Some(1800)));
        // snake_case and numbers, as other writers send them; no status is STARTING.
        let info = EgressInfo::parse(&json!({"egress_id": "EG_x", "room_name": "vc-1",
            "file_results": [{"filename": "f", "size": 10, "duration": 2_400_000_000u64}]}))
        .unwrap();
        assert_eq!(info.status, EgressStatus::Starting);
        assert_eq!(info.file.unwrap().duration_seconds, Some(2));
        // The largest int64 rounds without overflowing.
        let info = EgressInfo::parse(&json!({"egressId": "EG_x", "fileResults": [{"duration": u64::MAX.to_string()}]}))
            .unwrap();
        assert_eq!(info.file.unwrap().duration_seconds, Some(u64::MAX / 1_000_000_000 + 1));
    }

    #[test]
    fn failures_keep_a_bounded_error_and_bad_fields_are_400() {
        let long = format!("pipeline\nfrozen {}", "x".repeat(500));
        let info =
            EgressInfo::parse(&json!({"egressId": "EG_1", "status": "EGRESS_LIMIT_REACHED", "error": long})).unwrap();
        let error = info.error.unwrap();
        assert!(error.starts_with("pipelinefrozen") && error.chars().count() == MAX_ERROR_CHARS);
        assert!(info.status.is_final() && !EgressStatus::Ending.is_final());
        for bad in [
            json!({"status": "EGRESS_COMPLETE"}),
            json!({"egressId": "EG_1", "status": "DONE"}),
            json!({"egressId": "EG_1", "fileResults": [{"size": "-1"}]}),
            json!({"egressId": "EG_1", "fileResults": [{"duration": "1.5e9"}]}),
        ] {
            assert_eq!(EgressInfo::parse(&bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
