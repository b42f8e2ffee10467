//! The audit trail (issue 21): every read or change of personal or
//! clinical data, by a caller through the HTTP edge or an operator through
//! `vcare-ops`, becomes one record of who, what, of what, when, from where
//! and whether it was allowed — never the data itself. A record is written
//! before the answer leaves, and an audit that cannot be written fails the
//! request (503): nothing is served unaudited.

use vcare_aws::SdkConfig;
use vcare_domain::audit::{AuditRecord, GENESIS, Outcome};
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
        let draft = AuditRecord {
            clinic_id: access.clinic_id,
            seq: 0,
            at: self.clock.now(),
            actor_id: access.actor_id,
            actor_roles: access.actor_roles,
            action: access.action,
            subject_type: access.subject_type,
            subject_id: access.subject_id,
            outcome: access.outcome,
            request_id: access.request_id,
            source_ip: access.source_ip,
            prev_hash: GENESIS.into(),
            hash: String::new(),
        };
        let written = self.store.append(draft, events).await;
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
