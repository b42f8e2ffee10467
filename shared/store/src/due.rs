//! The due index (`vcare_domain::due`) in the table: `DUE#<shard>` /
//! `<instant>#<kind>#<clinic>#<id>`. A run queries each of [`SHARDS`]
//! partitions for keys up to its minute: its reads are proportional to
//! what is due, never to how many entries wait.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use chrono::{DateTime, Utc};
use vcare_domain::digest::sha256_hex;
use vcare_domain::due::{Due, DueKind};

use crate::items::{Item, key, put, string};
use crate::{StoreError, s, sort_time, unavailable};

/// Partitions the index is spread over (writes of one minute do not
/// crowd one partition); a run makes this many queries at least.
pub const SHARDS: usize = 4;

/// The partition an entry for `id` lives in (benchmarks seed the index
/// with it).
pub fn shard(id: &str) -> usize {
    usize::from(sha256_hex(id.as_bytes()).as_bytes()[0]) % SHARDS
}

fn due_key(d: &Due) -> Item {
    key(format!("DUE#{}", shard(&d.id)), &format!("{}#{}#{}#{}", sort_time(d.at), d.kind.as_str(), d.clinic, d.id))
}

#[derive(Debug, Clone)]
pub struct DueStore {
    pub(crate) ddb: Client,
    pub(crate) table: String,
}

impl DueStore {
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        Self { ddb, table: table.into() }
    }

    /// The entry as a Put for a transaction (writing it twice is harmless).
    pub fn put(&self, d: &Due) -> Result<TransactWriteItem, StoreError> {
        let mut item = due_key(d);
        item.insert("kind".into(), s("due"));
        item.insert("dueKind".into(), s(d.kind.as_str()));
        item.insert("clinicId".into(), s(&d.clinic));
        item.insert("refId".into(), s(&d.id));
        item.insert("at".into(), s(sort_time(d.at)));
        put(&self.table, item, None)
    }

    /// The entry's removal, for a transaction.
    pub fn delete(&self, d: &Due) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(due_key(d)))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Removes one entry.
    pub async fn remove(&self, d: &Due) -> Result<(), StoreError> {
        self.ddb.delete_item().table_name(&self.table).set_key(Some(due_key(d))).send().await.map_err(unavailable)?;
        Ok(())
    }

    /// Writes one entry on its own.
    pub async fn add(&self, d: &Due) -> Result<(), StoreError> {
        self.ddb.transact_write_items().transact_items(self.put(d)?).send().await.map_err(unavailable)?;
        Ok(())
    }

    /// Every entry due before `before`, oldest first per shard, at most
    /// `limit` in all; and how many read requests that took.
    pub async fn due_before(&self, before: DateTime<Utc>, limit: usize) -> Result<(Vec<Due>, usize), StoreError> {
        let mut out = Vec::new();
        let mut reads = 0;
        for shard in 0..SHARDS {
            let mut start = None;
            loop {
                let page = self
                    .ddb
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :p AND sk < :b")
                    .expression_attribute_values(":p", s(format!("DUE#{shard}")))
                    .expression_attribute_values(":b", s(sort_time(before)))
                    .set_exclusive_start_key(start)
                    .limit(i32::try_from(limit.saturating_sub(out.len()).clamp(1, 1000)).unwrap_or(1000))
                    .send()
                    .await
                    .map_err(unavailable)?;
                reads += 1;
                for item in page.items.unwrap_or_default() {
                    out.push(parse(&item)?);
                }
                start = page.last_evaluated_key;
                if start.is_none() || out.len() >= limit {
                    break;
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok((out, reads))
    }
}

fn parse(item: &Item) -> Result<Due, StoreError> {
    let bad = || StoreError::Corrupt("due entry".into());
    let at = string(item, "at").and_then(|t| t.parse().ok()).ok_or_else(bad)?;
    let kind = string(item, "dueKind").as_deref().and_then(DueKind::parse).ok_or_else(bad)?;
    Ok(Due { at, kind, clinic: string(item, "clinicId").ok_or_else(bad)?, id: string(item, "refId").ok_or_else(bad)? })
}
