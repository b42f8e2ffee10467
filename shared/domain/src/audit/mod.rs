//! The audit trail's records: who was given or changed what, never the
//! data itself. A record is written as it happens, alone, under one of its
//! clinic's [`SHARDS`] (no chain head is read or held, so no record waits
//! on another); a sequencer later seals it into its clinic's hash chain
//! ([`chain`]), after which a changed, removed, inserted or reordered
//! record is found.
//!
//! A record's digest is SHA-256 over its canonical bytes: its fields in a
//! fixed order, each length-prefixed (so no field's text can pose as the
//! next one's).

pub mod chain;
mod query;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use chain::{Block, Broken, ChainEntry, GENESIS, Verifier, seal, sealing_order};
pub use query::{AuditQuery, MAX_PAGE};

use crate::digest::{sha256, sha256_hex};

/// How many partitions a clinic's records are spread over. One DynamoDB
/// partition takes 1,000 write units a second; a busy clinic's 1,000
/// records a second, with their indexes and seals, need several.
pub const SHARDS: u8 = 8;

/// Whether the access was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allowed,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
        }
    }
}

/// One access, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub clinic_id: String,
    /// `aud_` and 128 random bits: unique without asking anyone.
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor_id: String,
    pub actor_roles: Vec<String>,
    /// Who let the actor have it, where that is someone else: the maker
    /// of the join link a token was minted from (the actor is its owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_by: Option<String>,
    /// Like `recording.download-url`, `room.read`.
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub outcome: Outcome,
    pub request_id: String,
    pub source_ip: String,
}

fn field(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Length-prefixed fields, in order.
pub(crate) fn canonical<'a>(fields: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    for text in fields {
        field(&mut out, text);
    }
    out
}

/// The time as every record's bytes and places say it (microseconds, UTC).
pub fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl AuditRecord {
    /// The canonical bytes its digest is over.
    pub fn canonical(&self) -> Vec<u8> {
        canonical([
            self.clinic_id.as_str(),
            self.id.as_str(),
            &time_text(self.at),
            self.actor_id.as_str(),
            &self.actor_roles.join(","),
            self.granted_by.as_deref().unwrap_or_default(),
            self.action.as_str(),
            self.subject_type.as_str(),
            self.subject_id.as_str(),
            self.outcome.as_str(),
            self.request_id.as_str(),
            self.source_ip.as_str(),
        ])
    }

    /// SHA-256 of [`Self::canonical`], hex: what its seal binds.
    pub fn digest(&self) -> String {
        sha256_hex(&self.canonical())
    }

    /// Which of its clinic's shards it is written under (from its id).
    pub fn shard(&self) -> u8 {
        shard_of(&self.id)
    }

    /// The record as the audit query answers it (API.md).
    pub fn view(&self) -> serde_json::Value {
        let mut view = serde_json::json!({
            "id": self.id,
            "at": self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "actor": {"id": self.actor_id, "roles": self.actor_roles},
            "action": self.action,
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "outcome": self.outcome,
            "requestId": self.request_id,
            "sourceIp": self.source_ip,
        });
        if let Some(by) = &self.granted_by {
            view["grantedBy"] = serde_json::Value::String(by.clone());
        }
        view
    }
}

/// The shard of a record id: spread evenly whatever the id looks like.
pub fn shard_of(id: &str) -> u8 {
    sha256(id.as_bytes())[0] % SHARDS
}

/// A new record id.
pub fn record_id() -> String {
    crate::ids::prefixed("aud")
}

#[cfg(test)]
pub(crate) mod tests;
