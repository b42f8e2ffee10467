//! The chain as stored: blocks under `SEAL#<clinic>` at their first place,
//! and a seal beside each sealed record (`SEALED#<clinic>#<shard>`, the
//! record's sk), so whether a record is sealed is one read, and a range
//! of a shard's records can be matched with its seals.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use vcare_domain::audit::{AuditRecord, Block, ChainEntry, SHARDS, shard_of};

use super::{AuditStore, batch_get, from_item, keys_of, pk, position, record_key};
use crate::items::{Item, key, string};
use crate::{StoreError, s, unavailable};

fn chain_pk(clinic: &str) -> String {
    format!("SEAL#{clinic}")
}

fn block_sk(first: u64) -> String {
    format!("SEQ#{first:020}")
}

pub(super) fn seals_pk(clinic: &str, shard: u8) -> String {
    format!("SEALED#{clinic}#{shard}")
}

fn seal_key(clinic: &str, at: DateTime<Utc>, id: &str) -> Item {
    key(seals_pk(clinic, shard_of(id)), &position(at, id))
}

/// How far each of a clinic's shards is known sealed: every record of
/// shard `i` at or before `shards[i]` (a record's position) has its seal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepPosition {
    pub shards: Vec<Option<String>>,
}

impl AuditStore {
    /// The chain's head, (seq, hash), read consistently.
    pub async fn head(&self, clinic: &str) -> Result<Option<(u64, String)>, StoreError> {
        let got = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(chain_pk(clinic)))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        match got.items.unwrap_or_default().first() {
            None => Ok(None),
            Some(item) => Ok(block_of(item)?.head()),
        }
    }

    /// Those of `records` (all of one clinic) that have no seal yet.
    pub async fn unsealed(&self, records: Vec<AuditRecord>) -> Result<Vec<AuditRecord>, StoreError> {
        let keys = records.iter().map(|r| seal_key(&r.clinic_id, r.at, &r.id)).collect();
        let sealed = keys_of(&batch_get(&self.ddb, &self.table, keys).await?);
        Ok(records
            .into_iter()
            .filter(|r| {
                let k = seal_key(&r.clinic_id, r.at, &r.id);
                !sealed.contains(&(string(&k, "pk").unwrap_or_default(), string(&k, "sk").unwrap_or_default()))
            })
            .collect())
    }

    /// Writes `block` at its place with a seal for each of its records, in
    /// one transaction: `false` if the place is taken or a record was
    /// sealed meanwhile (read the head again), nothing written then.
    pub async fn write_block(&self, block: &Block) -> Result<bool, StoreError> {
        const NEW: &str = "attribute_not_exists(pk)";
        let json = serde_json::to_string(block).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut item = key(chain_pk(&block.clinic_id), &block_sk(block.first()));
        item.extend([("kind".to_owned(), s("audit-block")), ("block".to_owned(), s(json))]);
        let mut items = vec![crate::items::put(&self.table, item, Some(NEW))?];
        for e in &block.entries {
            let mut seal = seal_key(&block.clinic_id, e.at, &e.record_id);
            seal.insert("seq".into(), AttributeValue::N(e.seq.to_string()));
            items.push(crate::items::put(&self.table, seal, Some(NEW))?);
        }
        match self.ddb.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            // A condition failed, or another sealer's transaction held an item.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_transaction_canceled_exception()) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Blocks of the clinic's chain after place `after`, in order, at most `limit`.
    pub async fn blocks(&self, clinic: &str, after: u64, limit: i32) -> Result<Vec<Block>, StoreError> {
        let got = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk > :after")
            .expression_attribute_values(":pk", s(chain_pk(clinic)))
            .expression_attribute_values(":after", s(block_sk(after)))
            .limit(limit)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        got.items.unwrap_or_default().iter().map(block_of).collect()
    }

    /// The records the entries name, by id (a record not kept is absent).
    pub async fn sealed_records(
        &self,
        clinic: &str,
        entries: &[ChainEntry],
    ) -> Result<HashMap<String, AuditRecord>, StoreError> {
        let keys = entries.iter().map(|e| record_key(clinic, e.at, &e.record_id)).collect();
        let items = batch_get(&self.ddb, &self.table, keys).await?;
        items.iter().map(|i| from_item(i).map(|r| (r.id.clone(), r))).collect()
    }

    /// Up to `limit` of a shard's records after `after` (a position) and
    /// up to `until`, oldest first, with the position to go on from.
    pub async fn records_between(
        &self,
        clinic: &str,
        shard: u8,
        after: Option<&str>,
        until: DateTime<Utc>,
        limit: i32,
    ) -> Result<(Vec<AuditRecord>, Option<String>), StoreError> {
        let items = self.range(pk(clinic, shard), after, until, limit).await?;
        let last = items.last().and_then(|i| string(i, "sk"));
        Ok((items.iter().map(from_item).collect::<Result<_, _>>()?, last))
    }

    async fn range(
        &self,
        pk: String,
        after: Option<&str>,
        until: DateTime<Utc>,
        limit: i32,
    ) -> Result<Vec<Item>, StoreError> {
        // `~` sorts after `#` and every id: the whole of `until`'s millisecond.
        let got = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :until")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s(after.map_or_else(|| "0".to_owned(), |a| format!("{a}\u{0}"))))
            .expression_attribute_values(":until", s(format!("{}#~", crate::sort_time(until))))
            .limit(limit)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(got.items.unwrap_or_default())
    }

    /// Where the sweep stopped for the clinic.
    pub async fn sweep_position(&self, clinic: &str) -> Result<SweepPosition, StoreError> {
        let got = crate::items::get_item(&self.ddb, &self.table, key(format!("SWEEP#{clinic}"), "SWEEP")).await?;
        let shards = (0..SHARDS).map(|i| got.as_ref().and_then(|item| string(item, &format!("s{i}")))).collect();
        Ok(SweepPosition { shards })
    }

    /// Moves the sweep's position on (the one item here that is replaced).
    pub async fn set_sweep_position(&self, clinic: &str, at: &SweepPosition) -> Result<(), StoreError> {
        let mut item = key(format!("SWEEP#{clinic}"), "SWEEP");
        for (i, p) in at.shards.iter().enumerate() {
            if let Some(p) = p {
                item.insert(format!("s{i}"), s(p));
            }
        }
        self.ddb.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(unavailable)?;
        Ok(())
    }
}

fn block_of(item: &Item) -> Result<Block, StoreError> {
    let text = string(item, "block").ok_or_else(|| StoreError::Corrupt("no block".into()))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl AuditStore {
    /// The block an item of the audit table holds (a stream's image);
    /// `None` for the table's other items.
    pub fn block_in(item: &Item) -> Result<Option<Block>, StoreError> {
        match string(item, "kind").as_deref() {
            Some("audit-block") => block_of(item).map(Some),
            _ => Ok(None),
        }
    }
}
