//! The chain: a clinic's records in the order its sequencer sealed them,
//! each entry's hash over the one before it, the entry's place and the
//! record's digest. Sealing is one step apart from writing: a sequencer
//! (the audit table's stream, and a sweep behind it) takes records that
//! are written but not sealed, puts them in [`sealing_order`], and seals
//! them in a [`Block`] after the chain's head; the store writes a block
//! only at the place after the head, so two sequencers cannot fork it.
//! A record is in the chain once: its seal is written with the block, and
//! only where it has none.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AuditRecord, canonical};
use crate::digest::sha256_hex;

/// The hash before a clinic's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Most records one block seals (with their seals, one transaction of at
/// most 100 writes).
pub const MAX_BLOCK: usize = 99;

/// One record's place in its clinic's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainEntry {
    /// From 1, without gaps.
    pub seq: u64,
    pub record_id: String,
    /// The record's time (with its id, where the record is kept).
    pub at: DateTime<Utc>,
    /// The record's digest when it was sealed.
    pub digest: String,
    /// Over the previous entry's hash, the clinic, `seq` and `digest`.
    pub hash: String,
}

/// Entries sealed together, following the entry before `entries[0]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    pub clinic_id: String,
    pub prev_hash: String,
    pub entries: Vec<ChainEntry>,
    /// When the sequencer sealed it (for the sealing lag; not hashed).
    pub sealed_at: DateTime<Utc>,
}

impl Block {
    pub fn first(&self) -> u64 {
        self.entries.first().map_or(0, |e| e.seq)
    }

    /// The chain's head after this block: (seq, hash).
    pub fn head(&self) -> Option<(u64, String)> {
        self.entries.last().map(|e| (e.seq, e.hash.clone()))
    }
}

/// An entry's hash.
pub fn link_hash(clinic_id: &str, prev_hash: &str, seq: u64, record_id: &str, digest: &str) -> String {
    sha256_hex(&canonical([prev_hash, clinic_id, &seq.to_string(), record_id, digest]))
}

/// The order a sequencer seals what it has in hand: by time, then id (the
/// stream brings each shard in its own order, not the clinic's).
pub fn sealing_order(records: &mut [AuditRecord]) {
    records.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
}

/// `records` sealed in the order given, after `head` ((seq, hash) of the
/// chain's last entry; `None` for a clinic's first block), at `now`.
pub fn seal(clinic_id: &str, head: Option<(u64, &str)>, records: &[AuditRecord], now: DateTime<Utc>) -> Block {
    let (mut seq, prev) = head.unwrap_or((0, GENESIS));
    let mut hash = prev.to_owned();
    let entries = records
        .iter()
        .map(|r| {
            seq += 1;
            let digest = r.digest();
            hash = link_hash(clinic_id, &hash, seq, &r.id, &digest);
            ChainEntry { seq, record_id: r.id.clone(), at: r.at, digest, hash: hash.clone() }
        })
        .collect();
    Block { clinic_id: clinic_id.to_owned(), prev_hash: prev.to_owned(), entries, sealed_at: now }
}

/// Where a clinic's chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// The record sealed at `seq` is not what was sealed (changed), or the
    /// entry itself was changed.
    Altered { seq: u64 },
    /// The entry at `seq` does not follow the one before it (an entry
    /// removed, inserted or reordered).
    Unlinked { seq: u64 },
    /// The record sealed at `seq` is gone.
    Missing { seq: u64 },
}

/// Checks a clinic's chain entry by entry, from its first.
#[derive(Debug, Clone)]
pub struct Verifier {
    clinic_id: String,
    head: (u64, String),
}

impl Verifier {
    pub fn new(clinic_id: &str) -> Self {
        Self { clinic_id: clinic_id.to_owned(), head: (0, GENESIS.to_owned()) }
    }

    /// Entries checked so far.
    pub fn sealed(&self) -> u64 {
        self.head.0
    }

    /// The next block; `record` finds a sealed record by its entry (`None`:
    /// not kept).
    pub fn block<'a>(
        &mut self,
        block: &Block,
        mut record: impl FnMut(&ChainEntry) -> Option<&'a AuditRecord>,
    ) -> Result<(), Broken> {
        if block.clinic_id != self.clinic_id || block.prev_hash != self.head.1 {
            return Err(Broken::Unlinked { seq: block.first() });
        }
        for e in &block.entries {
            if e.seq != self.head.0 + 1 {
                return Err(Broken::Unlinked { seq: e.seq });
            }
            if link_hash(&self.clinic_id, &self.head.1, e.seq, &e.record_id, &e.digest) != e.hash {
                return Err(Broken::Altered { seq: e.seq });
            }
            let r = record(e).ok_or(Broken::Missing { seq: e.seq })?;
            if r.id != e.record_id || r.clinic_id != self.clinic_id || r.digest() != e.digest {
                return Err(Broken::Altered { seq: e.seq });
            }
            self.head = (e.seq, e.hash.clone());
        }
        Ok(())
    }
}
