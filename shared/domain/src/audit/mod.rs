//! The audit trail's records (issue 21): who was given or changed what,
//! never the data itself, each chained to its clinic's previous record so
//! that a changed, removed or reordered record is found. Pure: the store
//! writes a record with the chain head in one transaction.
//!
//! A record's hash is SHA-256 over its canonical bytes — its fields in a
//! fixed order, each length-prefixed (so no field's text can pose as the
//! next one's), after the previous record's hash.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Rejected;
use crate::digest::sha256_hex;
use crate::ids::is_valid_external_id;

/// The hash before a clinic's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Whether the access was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allowed,
    Denied,
}

/// One access, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub clinic_id: String,
    /// Its place in the clinic's chain, from 1.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor_id: String,
    pub actor_roles: Vec<String>,
    /// Like `recording.download-url`, `room.read`.
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub outcome: Outcome,
    pub request_id: String,
    pub source_ip: String,
    /// The previous record's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    pub hash: String,
}

fn field(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

impl AuditRecord {
    /// The canonical bytes the hash is over (everything but the hash).
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        for text in [
            self.prev_hash.as_str(),
            self.clinic_id.as_str(),
            &self.seq.to_string(),
            &self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            self.actor_id.as_str(),
            &self.actor_roles.join(","),
            self.action.as_str(),
            self.subject_type.as_str(),
            self.subject_id.as_str(),
            match self.outcome {
                Outcome::Allowed => "allowed",
                Outcome::Denied => "denied",
            },
            self.request_id.as_str(),
            self.source_ip.as_str(),
        ] {
            field(&mut out, text);
        }
        out
    }

    /// This record's hash over its fields and the previous hash.
    pub fn compute_hash(&self) -> String {
        sha256_hex(&self.canonical())
    }

    /// The record after `prev` (or the clinic's first, `prev` `None`), hashed.
    pub fn sealed(mut self, prev: Option<(&str, u64)>) -> Self {
        let (prev_hash, prev_seq) = prev.unwrap_or((GENESIS, 0));
        self.prev_hash = prev_hash.to_owned();
        self.seq = prev_seq + 1;
        self.hash = self.compute_hash();
        self
    }
}

impl AuditRecord {
    /// The record as the audit query answers it (API.md).
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "seq": self.seq,
            "at": self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "actor": {"id": self.actor_id, "roles": self.actor_roles},
            "action": self.action,
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "outcome": self.outcome,
            "requestId": self.request_id,
            "sourceIp": self.source_ip,
        })
    }
}

/// Most records one page of the audit query holds.
pub const MAX_PAGE: i32 = 100;

/// An audit query as asked: `subjectId`, `actorId`, `from`, `to` (RFC 3339),
/// `limit` (1 to [`MAX_PAGE`], 50 by default) and `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub subject_id: Option<String>,
    pub actor_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: i32,
    pub cursor: Option<String>,
}

impl AuditQuery {
    /// Every parameter checked; the first that breaks its rule is named.
    pub fn parse<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, Rejected> {
        let bad = |d: &str| Rejected::Invalid(d.to_owned());
        let mut q = Self { subject_id: None, actor_id: None, from: None, to: None, limit: 50, cursor: None };
        let mut seen = std::collections::HashSet::new();
        for (name, value) in params {
            if !seen.insert(name) {
                return Err(bad("each query parameter may be given once"));
            }
            let time = |v: &str, what: &str| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| bad(&format!("{what}: an RFC 3339 time like 2026-12-01T09:00:00Z")))
            };
            let id = |v: &str, what: &str| {
                if is_valid_external_id(v) {
                    Ok(v.to_owned())
                } else {
                    Err(bad(&format!("{what}: 1 to 128 of A-Z a-z 0-9 . _ : @ -")))
                }
            };
            match name {
                "subjectId" => q.subject_id = Some(id(value, "subjectId")?),
                "actorId" => q.actor_id = Some(id(value, "actorId")?),
                "from" => q.from = Some(time(value, "from")?),
                "to" => q.to = Some(time(value, "to")?),
                "limit" => {
                    q.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| bad(&format!("limit: a whole number from 1 to {MAX_PAGE}")))?;
                }
                "cursor" => {
                    if value.is_empty() || value.len() > 2048 {
                        return Err(bad("cursor: not a cursor this endpoint gave you"));
                    }
                    q.cursor = Some(value.to_owned());
                }
                _ => return Err(bad("unknown query parameter (subjectId, actorId, from, to, limit, cursor)")),
            }
        }
        if let (Some(from), Some(to)) = (q.from, q.to)
            && from > to
        {
            return Err(bad("from: must not be after to"));
        }
        Ok(q)
    }
}

/// Where a clinic's chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// The record at `seq` is not what its hash says (changed).
    Altered { seq: u64 },
    /// The record at `seq` does not follow the one before it (one removed,
    /// inserted or reordered).
    Unlinked { seq: u64 },
}

/// Checks a clinic's records in order, from its first.
pub fn verify_chain(records: &[AuditRecord]) -> Result<(), Broken> {
    let mut prev = (GENESIS.to_owned(), 0);
    for r in records {
        if r.prev_hash != prev.0 || r.seq != prev.1 + 1 {
            return Err(Broken::Unlinked { seq: r.seq });
        }
        if r.compute_hash() != r.hash {
            return Err(Broken::Altered { seq: r.seq });
        }
        prev = (r.hash.clone(), r.seq);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_query_names_its_first_bad_parameter() {
        let q = AuditQuery::parse([("subjectId", "rm_1"), ("from", "2026-12-01T00:00:00Z"), ("limit", "10")]).unwrap();
        assert_eq!((q.subject_id.as_deref(), q.limit, q.actor_id), (Some("rm_1"), 10, None));
        assert_eq!(AuditQuery::parse([]).unwrap().limit, 50);
        for (params, says) in [
            (vec![("from", "yesterday")], "from:"),
            (vec![("to", "2026-13-01T00:00:00Z")], "to:"),
            (vec![("from", "2026-12-02T00:00:00Z"), ("to", "2026-12-01T00:00:00Z")], "after to"),
            (vec![("limit", "0")], "limit:"),
            (vec![("limit", "101")], "limit:"),
            (vec![("limit", "ten")], "limit:"),
            (vec![("subjectId", "a b")], "subjectId:"),
            (vec![("actorId", "")], "actorId:"),
            (vec![("cursor", "")], "cursor:"),
            (vec![("who", "x")], "unknown"),
            (vec![("actorId", "a"), ("actorId", "b")], "once"),
        ] {
            let Err(Rejected::Invalid(d)) = AuditQuery::parse(params.clone()) else { panic!("{params:?}") };
            assert!(d.contains(says), "{params:?}: {d}");
        }
    }

    fn access(n: u32) -> AuditRecord {
        AuditRecord {
            clinic_id: "c1".into(),
            seq: 0,
            at: "2026-12-02T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::seconds(n.into()),
            actor_id: "u-doc".into(),
            actor_roles: vec!["doctor".into()],
            action: "recording.download-url".into(),
            subject_type: "recording".into(),
            subject_id: format!("rec_{n}"),
            outcome: Outcome::Allowed,
            request_id: format!("req-{n}"),
            source_ip: "203.0.113.7".into(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn chain(n: u32) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(|r| (r.hash.as_str(), r.seq));
            let next = access(i).sealed(prev);
            out.push(next);
        }
        out
    }

    #[test]
    fn a_chain_verifies_and_every_tampering_is_found_where_it_is() {
        let good = chain(5);
        assert_eq!(verify_chain(&good), Ok(()));
        assert_eq!(good[0].prev_hash, GENESIS);
        assert_eq!(good[4].seq, 5);

        let mut altered = good.clone();
        altered[2].subject_id = "rec_other".into();
        assert_eq!(verify_chain(&altered), Err(Broken::Altered { seq: 3 }));

        let mut rehashed = good.clone();
        rehashed[2].actor_id = "u-nobody".into();
        rehashed[2].hash = rehashed[2].compute_hash();
        assert_eq!(
            verify_chain(&rehashed),
            Err(Broken::Unlinked { seq: 4 }),
            "a re-sealed record breaks the next link"
        );

        let mut removed = good.clone();
        removed.remove(1);
        assert_eq!(verify_chain(&removed), Err(Broken::Unlinked { seq: 3 }));

        let mut swapped = good.clone();
        swapped.swap(1, 2);
        assert_eq!(verify_chain(&swapped), Err(Broken::Unlinked { seq: 3 }));
        assert_eq!(verify_chain(&good[1..]), Err(Broken::Unlinked { seq: 2 }), "a chain starts at its first record");
    }

    #[test]
    fn the_hash_is_sha256_over_length_prefixed_fields_as_python_computes_it() {
        // Python's hashlib over the same bytes (big-endian u64 length, then UTF-8):
        // fields = [GENESIS, "c1", "1", "2026-12-02T10:00:01.000000Z", "u-doc", "doctor",
        //           "recording.download-url", "recording", "rec_1", "allowed", "req-1", "203.0.113.7"]
        // hashlib.sha256(b"".join(struct.pack(">Q", len(f)) + f for f in fields)).hexdigest()
        let first = access(1).sealed(None);
        assert_eq!(first.hash, "5b6be9113d520e51d1289eee85eab81aa3794394734bfb43cc31bf3d50b44a20");
    }

    #[test]
    fn no_field_can_pose_as_the_next_one() {
        let mut a = access(1);
        a.subject_type = "recording".into();
        a.subject_id = "x".into();
        let mut b = a.clone();
        b.subject_type = "recordingx".into();
        b.subject_id = String::new();
        assert_ne!(a.canonical(), b.canonical());
        assert_ne!(a.sealed(None).hash, b.sealed(None).hash);
    }
}
