//! The audit trail's sequencer: records are written alone (no request
//! waits on another for a place in the chain), and sealed here, each into
//! its clinic's hash chain, in a separate ordered step.
//!
//! - **Stream**: the audit table's stream (records only, filtered in the
//!   template). DynamoDB orders a stream per partition, not per clinic, so
//!   a batch is put in sealing order (time, then id) and sealed clinic by
//!   clinic in blocks of up to 99 after the chain's head. Two sequencers
//!   (two stream shards) that race for the same place: one block is
//!   written, the other reads the head again. A record already sealed (a
//!   batch delivered again after a crash) is left out: sealing is
//!   idempotent. A batch that cannot be sealed is reported whole, and the
//!   stream brings it again.
//! - **Sweep** (schedule): records the stream did not bring (a sequencer
//!   down past the stream's 24 hours, a region promoted after a loss) are
//!   found shard by shard from where the last sweep stopped to
//!   `SETTLE_SECONDS` ago (900: no record can still be in flight from
//!   before then), and sealed the same way.
//!
//! The lag from a record's time to its seal is the metric `AuditSealLag`
//! (milliseconds, the largest of each block), alarmed on in the template.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::Serialize;
use vcare_aws::SdkConfig;
use vcare_domain::audit::chain::MAX_BLOCK;
use vcare_domain::audit::{AuditRecord, SHARDS, seal, sealing_order};
use vcare_runtime::{Clock, Env, Error};
use vcare_store::{AuditStore, StoreError};

/// How often one block is tried again after losing its place.
const MAX_SEAL_ATTEMPTS: usize = 20;
/// Records one sweep query reads.
const SWEEP_PAGE: i32 = 500;

pub struct Sealer {
    pub store: AuditStore,
    pub clock: Clock,
    settle: chrono::Duration,
    /// Each clinic's head as this sequencer last wrote or read it: a block
    /// after a remembered head costs one transaction; a stale one fails
    /// its condition, never forks the chain.
    heads: Mutex<HashMap<String, (u64, String)>>,
}

/// Most clinics whose heads a sequencer remembers.
const MAX_REMEMBERED: usize = 10_000;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Swept {
    pub clinics: usize,
    pub sealed: usize,
}

impl Sealer {
    /// `AUDIT_TABLE_NAME`, `SETTLE_SECONDS` (60 to 86,400; 900).
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, Error> {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let store = AuditStore::new(ddb, env.required("AUDIT_TABLE_NAME")?, env.required("TABLE_NAME")?);
        let settle = chrono::Duration::seconds(env.bounded("SETTLE_SECONDS", 900, 60, 86_400)?);
        Ok(Self::new(store, Clock::system(), settle))
    }

    /// A sequencer whose sweep looks at records up to `settle` ago.
    pub fn new(store: AuditStore, clock: Clock, settle: chrono::Duration) -> Self {
        Self { store, clock, settle, heads: Mutex::default() }
    }

    /// Seals a stream batch; on a failure, reports the batch from its
    /// first record (all of it comes again; what was sealed is left out).
    pub async fn stream(&self, event: StreamEvent) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        let first = event.records.first().and_then(|r| r.change.sequence_number.clone());
        let mut records = Vec::with_capacity(event.records.len());
        for record in event.records {
            let item: vcare_store::items::Item = record.change.new_image.into();
            match AuditStore::record_of(&item) {
                Ok(Some(r)) => records.push(r),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "an audit record that cannot be read was not sealed"),
            }
        }
        if let Err(e) = self.seal(records).await {
            tracing::warn!(error = %e, "sealing stopped; the batch will come again");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = first;
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// Seals those of `records` not sealed yet, clinic by clinic; how many.
    pub async fn seal(&self, mut records: Vec<AuditRecord>) -> Result<usize, StoreError> {
        sealing_order(&mut records);
        records.sort_by(|a, b| a.clinic_id.cmp(&b.clinic_id)); // stable: each clinic's stay in order
        let mut sealed = 0;
        for clinic in records.chunk_by(|a, b| a.clinic_id == b.clinic_id) {
            for part in clinic.chunks(MAX_BLOCK) {
                sealed += self.seal_block(part).await?;
            }
        }
        Ok(sealed)
    }

    /// One clinic's records (at most a block's), after its head. The first
    /// try trusts the remembered head and that the records are new (the
    /// block's and seals' conditions check both); a lost try reads the
    /// head again and leaves out what was sealed meanwhile.
    async fn seal_block(&self, records: &[AuditRecord]) -> Result<usize, StoreError> {
        let Some(clinic) = records.first().map(|r| r.clinic_id.clone()) else { return Ok(0) };
        let mut candidates = records.to_vec();
        let mut head = self.remembered(&clinic);
        for attempt in 0..MAX_SEAL_ATTEMPTS {
            let known = match head.take() {
                Some(h) => h,
                None => self.store.head(&clinic).await?,
            };
            let now = self.clock.now();
            let block = seal(&clinic, known.as_ref().map(|(seq, hash)| (*seq, hash.as_str())), &candidates, now);
            if self.store.write_block(&block).await? {
                self.remember(&clinic, block.head());
                let lag = candidates.iter().map(|r| (now - r.at).num_milliseconds()).max().unwrap_or_default();
                vcare_runtime::metrics::record("AuditSealLag", lag.max(0) as f64, "Milliseconds", &[]);
                vcare_runtime::metrics::count_n("AuditRecordsSealed", candidates.len() as u64, &[]);
                return Ok(candidates.len());
            }
            // Another sequencer took the place, or sealed some of these.
            tracing::debug!(attempt, "a block lost its place in the chain");
            candidates = self.store.unsealed(candidates).await?;
            if candidates.is_empty() {
                return Ok(0);
            }
        }
        Err(StoreError::Contention)
    }

    /// The head remembered for `clinic` (`None`: not remembered; read it).
    fn remembered(&self, clinic: &str) -> Option<Option<(u64, String)>> {
        self.heads.lock().unwrap_or_else(|p| p.into_inner()).get(clinic).cloned().map(Some)
    }

    fn remember(&self, clinic: &str, head: Option<(u64, String)>) {
        let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        if heads.len() >= MAX_REMEMBERED {
            heads.clear();
        }
        if let Some(h) = head {
            heads.insert(clinic.to_owned(), h);
        }
    }

    /// Seals what the stream did not bring, clinic by clinic and shard by
    /// shard, up to `SETTLE_SECONDS` ago; moves each clinic's position on.
    pub async fn sweep(&self) -> Result<Swept, StoreError> {
        let until = self.clock.now() - self.settle;
        let mut swept = Swept::default();
        for clinic in self.store.clinics().await? {
            let mut at = self.store.sweep_position(&clinic).await?;
            for shard in 0..SHARDS {
                let i = usize::from(shard);
                loop {
                    let after = at.shards[i].as_deref();
                    let (page, last) = self.store.records_between(&clinic, shard, after, until, SWEEP_PAGE).await?;
                    let full = page.len() == SWEEP_PAGE as usize;
                    swept.sealed += self.seal(self.store.unsealed(page).await?).await?;
                    if last.is_some() {
                        at.shards[i] = last;
                    }
                    if !full {
                        break;
                    }
                }
                self.store.set_sweep_position(&clinic, &at).await?;
            }
            swept.clinics += 1;
        }
        if swept.sealed > 0 {
            tracing::warn!(sealed = swept.sealed, "the sweep sealed records the stream did not bring");
        }
        Ok(swept)
    }
}
