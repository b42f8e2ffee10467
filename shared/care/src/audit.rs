//! The audit trail (issue 21): every read or change of personal or
//! clinical data, by a caller through the HTTP edge or an operator through
//! `vcare-ops`, becomes one record of who, what, of what, when, from where
//! and whether it was allowed — never the data itself. A record is written
//! before the answer leaves, and an audit that cannot be written fails the
//! request (503): nothing is served unaudited. Writing reads nothing and
//! waits on no other record; the sequencer ([`crate::audit_seal`]) seals
//! it into the clinic's chain afterwards.

use vcare_aws::SdkConfig;
use vcare_domain::audit::{AuditRecord, Broken, Outcome, Verifier, record_id};
use vcare_domain::events::DomainEvent;
use vcare_runtime::{Clock, Env, Error};
pub use vcare_store::{AuditFilter, AuditPage};
use vcare_store::{AuditStore, StoreError};

/// One access, as the edge or the operator's tool saw it.
#[derive(Debug, Clone)]
pub struct Access {
    pub clinic_id: String,
    /// The caller's `sub`, or the operator's AWS identity.
    pub actor_id: String,
    pub actor_roles: Vec<String>,
    /// Like `room.read`, `token.issue`, `recording.list`.
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub outcome: Outcome,
    pub request_id: String,
    pub source_ip: String,
    /// Who let the actor have it, where that is someone else (the maker of
    /// a join link; the actor is its owner).
    pub granted_by: Option<String>,
}

#[derive(Clone)]
pub struct Audit {
    pub store: AuditStore,
    pub clock: Clock,
}

impl Audit {
    /// `AUDIT_TABLE_NAME`, with the outbox in `TABLE_NAME`.
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, Error> {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let store = AuditStore::new(ddb, env.required("AUDIT_TABLE_NAME")?, env.required("TABLE_NAME")?);
        Ok(Self { store, clock: Clock::system() })
    }

    /// Writes the access's record, and `events` with it (one transaction).
    pub async fn record(&self, access: Access, events: &[DomainEvent]) -> Result<AuditRecord, StoreError> {
        let record = AuditRecord {
            clinic_id: access.clinic_id,
            id: record_id(),
            at: self.clock.now(),
            actor_id: access.actor_id,
            actor_roles: access.actor_roles,
            granted_by: access.granted_by,
            action: access.action,
            subject_type: access.subject_type,
            subject_id: access.subject_id,
            outcome: access.outcome,
            request_id: access.request_id,
            source_ip: access.source_ip,
        };
        let written = self.store.write(&record, events).await.map(|()| record);
        let outcome = match &written {
            Ok(_) => "written",
            Err(_) => "failed",
        };
        vcare_runtime::metrics::count("AuditRecords", &[("outcome", outcome)]);
        written
    }

    pub async fn query(
        &self,
        clinic: &str,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<AuditPage, StoreError> {
        self.store.query(clinic, filter, cursor, limit).await
    }
}

/// What `vcare-ops audit verify` finds of a clinic's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Records in the chain, checked up to where it breaks.
    pub sealed: u64,
    /// Records written but not sealed yet.
    pub awaiting_seal: u64,
    /// Where it breaks, if it does.
    pub broken: Option<Broken>,
}

impl Audit {
    /// Walks the clinic's chain from its first block, checking every entry
    /// against its record; `each` sees every sealed record in chain order.
    /// Seals are counted before records, and both before the walk, so
    /// `awaiting_seal` 0 means every record there was when it was counted
    /// is sealed, and in the walk.
    pub async fn verify(&self, clinic: &str, mut each: impl FnMut(&AuditRecord)) -> Result<ChainReport, StoreError> {
        let seals = self.store.count_sealed(clinic).await?;
        let total = self.store.count(clinic).await?;
        let mut verifier = Verifier::new(clinic);
        let mut after = 0;
        let mut broken = None;
        'chain: loop {
            let blocks = self.store.blocks(clinic, after, 25).await?;
            if blocks.is_empty() {
                break;
            }
            for block in &blocks {
                let records = self.store.sealed_records(clinic, &block.entries).await?;
                if let Err(b) = verifier.block(block, |e| records.get(&e.record_id)) {
                    broken = Some(b);
                    break 'chain;
                }
                block.entries.iter().filter_map(|e| records.get(&e.record_id)).for_each(&mut each);
                after = block.head().map_or(after, |(seq, _)| seq);
            }
        }
        Ok(ChainReport { sealed: verifier.sealed(), awaiting_seal: total.saturating_sub(seals), broken })
    }
}
