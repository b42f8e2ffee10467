//! The audit trail, as stored: its own table (`AUDIT_TABLE_NAME`),
//! append-only — every item is a Put under `attribute_not_exists`, and no
//! function's IAM grants an update or a delete on it (tests/contract.rs
//! checks), but for the sweep's own position.
//!
//! | item | pk | sk | index keys |
//! |---|---|---|---|
//! | record | `AUDIT#<clinic>#<shard>` | `<time>#<id>` | `spk` = `<clinic>#<subjectId>#<shard>` (`bysubject`), `apk` = `<clinic>#<actorId>#<shard>` (`byactor`), each ranged by `at` = `<time>#<id>` |
//! | a record's seal | `SEALED#<clinic>#<shard>` | the record's sk | `seq` |
//! | block of the chain | `SEAL#<clinic>` | `SEQ#<first seq, 20 digits>` | |
//! | a clinic with records | `CLINICS` | `<clinic>` | |
//! | the sweep's position | `SWEEP#<clinic>` | `SWEEP` | `s0`…`s7` |
//!
//! A record is written alone, under one of its clinic's shards (from its
//! id): nothing is read first and no writer waits for another, and a busy
//! clinic's records spread over [`SHARDS`] partitions. Its place in the
//! chain comes later ([`chain`]): a block is written only at the place
//! after the chain's head (a block there already: the writer lost, and
//! reads the head again), with a seal for each record, written only where
//! the record has none, in one transaction.

mod chain;
mod query;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::TransactWriteItem;
use vcare_domain::audit::{AuditRecord, SHARDS, shard_of};
use vcare_domain::events::DomainEvent;

pub use self::chain::SweepPosition;
pub use self::query::{AuditFilter, AuditPage};
use crate::items::{Item, condition_failed_at, key, string, whole_partition};
use crate::{StoreError, outbox_put, s, sort_time, unavailable};

fn pk(clinic: &str, shard: u8) -> String {
    format!("AUDIT#{clinic}#{shard}")
}

/// Where a record sorts in its shard and its indexes: time, then id.
fn position(at: chrono::DateTime<chrono::Utc>, id: &str) -> String {
    format!("{}#{id}", sort_time(at))
}

fn record_key(clinic: &str, at: chrono::DateTime<chrono::Utc>, id: &str) -> Item {
    key(pk(clinic, shard_of(id)), &position(at, id))
}

#[derive(Debug, Clone)]
pub struct AuditStore {
    ddb: Client,
    table: String,
    /// The outbox's table, for the events a record is written with.
    main: String,
    /// Clinics this process has listed (the sweep's list of clinics).
    listed: Arc<Mutex<HashSet<String>>>,
}

impl AuditStore {
    pub fn new(ddb: Client, table: impl Into<String>, main: impl Into<String>) -> Self {
        Self { ddb, table: table.into(), main: main.into(), listed: Arc::default() }
    }

    fn item(r: &AuditRecord) -> Result<Item, StoreError> {
        let json = serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (shard, at) = (r.shard(), position(r.at, &r.id));
        let mut item = record_key(&r.clinic_id, r.at, &r.id);
        item.extend([
            ("kind".to_owned(), s("audit")),
            ("at".to_owned(), s(&at)),
            ("spk".to_owned(), s(format!("{}#{}#{shard}", r.clinic_id, r.subject_id))),
            ("apk".to_owned(), s(format!("{}#{}#{shard}", r.clinic_id, r.actor_id))),
            ("record".to_owned(), s(json)),
        ]);
        Ok(item)
    }

    /// Writes `record` (with `events` in the same transaction: an event
    /// exists exactly when its record does), reading nothing first. Its
    /// seal comes later, from the sequencer.
    pub async fn write(&self, record: &AuditRecord, events: &[DomainEvent]) -> Result<(), StoreError> {
        const NEW: &str = "attribute_not_exists(pk)";
        let item = Self::item(record)?;
        let list = self.list(&record.clinic_id);
        let written = async {
            if events.is_empty() {
                let put = self.ddb.put_item().table_name(&self.table).set_item(Some(item)).condition_expression(NEW);
                return match put.send().await {
                    Ok(_) => Ok(()),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                        Err(StoreError::Corrupt("an audit record id was used twice".into()))
                    }
                    Err(e) => Err(unavailable(e)),
                };
            }
            let mut items = vec![crate::items::put(&self.table, item, Some(NEW))?];
            for e in events {
                items.push(TransactWriteItem::builder().put(outbox_put(&self.main, e)?).build());
            }
            match self.ddb.transact_write_items().set_transact_items(Some(items)).send().await {
                Ok(_) => Ok(()),
                Err(e) if condition_failed_at(&e, 0) == Some(true) => {
                    Err(StoreError::Corrupt("an audit record id was used twice".into()))
                }
                Err(e) => Err(unavailable(e)),
            }
        };
        let (written, _) = tokio::join!(written, list);
        written
    }

    /// Lists the clinic for the sweep, once per process (beside the
    /// record's write, never before it; a failure is tried again with the
    /// next record: the stream seals meanwhile).
    async fn list(&self, clinic: &str) {
        if self.listed.lock().unwrap_or_else(|p| p.into_inner()).contains(clinic) {
            return;
        }
        let put = self.ddb.put_item().table_name(&self.table).set_item(Some(key("CLINICS".into(), clinic)));
        match put.send().await {
            Ok(_) => {
                self.listed.lock().unwrap_or_else(|p| p.into_inner()).insert(clinic.to_owned());
            }
            Err(e) => tracing::warn!(error = %unavailable(e), "a clinic could not be listed for the audit sweep"),
        }
    }

    /// Every clinic that has records.
    pub async fn clinics(&self) -> Result<Vec<String>, StoreError> {
        let (items, _) = whole_partition(&self.ddb, &self.table, "CLINICS".into(), false).await?;
        Ok(items.iter().filter_map(|i| string(i, "sk")).collect())
    }

    /// The record an item of the audit table holds (a stream's image);
    /// `None` for the table's other items (seals, blocks, lists).
    pub fn record_of(item: &Item) -> Result<Option<AuditRecord>, StoreError> {
        match string(item, "kind").as_deref() {
            Some("audit") => from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    /// How many records the clinic has, sealed or not.
    pub async fn count(&self, clinic: &str) -> Result<u64, StoreError> {
        self.count_in(|shard| pk(clinic, shard)).await
    }

    /// How many of the clinic's records have their seal.
    pub async fn count_sealed(&self, clinic: &str) -> Result<u64, StoreError> {
        self.count_in(|shard| chain::seals_pk(clinic, shard)).await
    }

    async fn count_in(&self, partition: impl Fn(u8) -> String) -> Result<u64, StoreError> {
        let mut total = 0;
        for shard in 0..SHARDS {
            total += whole_partition(&self.ddb, &self.table, partition(shard), true).await?.1;
        }
        Ok(total)
    }
}

fn from_item(item: &Item) -> Result<AuditRecord, StoreError> {
    let text = string(item, "record").ok_or_else(|| StoreError::Corrupt("no record".into()))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Items by key, in BatchGetItem's pages of 100, read consistently.
async fn batch_get(ddb: &Client, table: &str, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::with_capacity(keys.len());
    for part in keys.chunks(100) {
        let mut pending: Vec<Item> = part.to_vec();
        for _ in 0..8 {
            if pending.is_empty() {
                break;
            }
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(pending.clone()))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let got = ddb.batch_get_item().request_items(table, request).send().await.map_err(unavailable)?;
            out.extend(got.responses.and_then(|mut r| r.remove(table)).unwrap_or_default());
            pending = got.unprocessed_keys.and_then(|mut u| u.remove(table)).map(|k| k.keys).unwrap_or_default();
        }
        if !pending.is_empty() {
            return Err(StoreError::Unavailable("reads left unprocessed".into()));
        }
    }
    Ok(out)
}

/// Keys of `items` without the rest.
fn keys_of(items: &[Item]) -> HashSet<(String, String)> {
    items.iter().filter_map(|i| string(i, "pk").zip(string(i, "sk"))).collect()
}
