//! The audit trail, as stored (issue 21): its own table
//! (`AUDIT_TABLE_NAME`), append-only — every record is a Put under
//! `attribute_not_exists`, and no function's IAM grants an update or a
//! delete on it (tests/contract.rs checks).
//!
//! | item | pk | sk | index keys |
//! |---|---|---|---|
//! | record | `AUDIT#<clinic>` | `SEQ#<seq, 20 digits>` | `at` (`bytime`, hash `pk`); `spk` = `<clinic>#<subjectId>` (`bysubject`); `apk` = `<clinic>#<actorId>` (`byactor`), each ranged by `at` = `<time>#<seq>` |
//!
//! The chain is linear because the key is the place in it: a record for
//! place `n + 1` can be written once only, so two writers that both saw
//! `n` as the head cannot both link to it — the loser re-reads the head
//! and takes the next place. The head a writer last saw is kept in
//! memory, so a warm writer pays one conditional write, and a stale memory
//! costs a failed condition, never a fork. One process's writers of a
//! clinic take turns; processes race (Lambda runs one request per
//! instance at a time, so a clinic's concurrency is its instances').

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::TransactWriteItem;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use vcare_domain::audit::AuditRecord;
use vcare_domain::events::DomainEvent;

use crate::items::{Item, condition_failed_at, string};
use crate::{StoreError, outbox_put, s, sort_time, unavailable};

/// How often an append re-reads the head after losing its place.
const MAX_APPEND_ATTEMPTS: usize = 12;

fn pk(clinic: &str) -> String {
    format!("AUDIT#{clinic}")
}

fn sk(seq: u64) -> String {
    format!("SEQ#{seq:020}")
}

fn range_key(r: &AuditRecord) -> String {
    format!("{}#{:020}", sort_time(r.at), r.seq)
}

/// Which records a query asks for; the newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub subject_id: Option<String>,
    pub actor_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub items: Vec<AuditRecord>,
    pub next_cursor: Option<String>,
}

/// One clinic's remembered head, (seq, hash), and the turn to append.
type Lane = Arc<tokio::sync::Mutex<Option<(u64, String)>>>;

#[derive(Debug, Clone)]
pub struct AuditStore {
    ddb: Client,
    table: String,
    /// The outbox's table, for the events a record is written with.
    main: String,
    /// Each clinic's head as this writer last saw it, (seq, hash), behind
    /// a lock held for the whole append: this process's writers of one
    /// clinic take their turns instead of racing for the same place (a
    /// race would cost every loser a re-read, and many at once could run
    /// out of attempts). Other processes still race, and lose cleanly.
    heads: Arc<Mutex<HashMap<String, Lane>>>,
}

impl AuditStore {
    pub fn new(ddb: Client, table: impl Into<String>, main: impl Into<String>) -> Self {
        Self { ddb, table: table.into(), main: main.into(), heads: Arc::default() }
    }

    fn lane(&self, clinic: &str) -> Lane {
        self.heads.lock().unwrap_or_else(|p| p.into_inner()).entry(clinic.to_owned()).or_default().clone()
    }

    /// The clinic's newest record's place and hash, read consistently.
    async fn head(&self, clinic: &str) -> Result<Option<(u64, String)>, StoreError> {
        let got = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk(clinic)))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        match got.items.unwrap_or_default().into_iter().next() {
            None => Ok(None),
            Some(item) => {
                let r = from_item(&item)?;
                Ok(Some((r.seq, r.hash)))
            }
        }
    }

    fn item(r: &AuditRecord) -> Result<Item, StoreError> {
        let json = serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let at = range_key(r);
        Ok(HashMap::from([
            ("pk".to_owned(), s(pk(&r.clinic_id))),
            ("sk".to_owned(), s(sk(r.seq))),
            ("at".to_owned(), s(&at)),
            ("spk".to_owned(), s(format!("{}#{}", r.clinic_id, r.subject_id))),
            ("apk".to_owned(), s(format!("{}#{}", r.clinic_id, r.actor_id))),
            ("record".to_owned(), s(json)),
        ]))
    }

    /// Appends `draft` (its `seq`, `prev_hash` and `hash` are filled here)
    /// to its clinic's chain, with `events` in the same transaction (their
    /// outbox records: an event exists exactly when its record does).
    /// Answers the record as written.
    pub async fn append(&self, draft: AuditRecord, events: &[DomainEvent]) -> Result<AuditRecord, StoreError> {
        let clinic = draft.clinic_id.clone();
        let lane = self.lane(&clinic);
        let mut remembered = lane.lock().await;
        for attempt in 0..MAX_APPEND_ATTEMPTS {
            let head = match remembered.take() {
                Some(h) => Some(h),
                None => self.head(&clinic).await?,
            };
            let record = draft.clone().sealed(head.as_ref().map(|(seq, hash)| (hash.as_str(), *seq)));
            match self.write(&record, events).await? {
                true => {
                    *remembered = Some((record.seq, record.hash.clone()));
                    return Ok(record);
                }
                // Another process took the place: re-read the head, take the next.
                false => tracing::debug!(attempt, "an audit record lost its place in the chain"),
            }
        }
        Err(StoreError::Contention)
    }

    /// Writes `record` at its place if the place is free (`false`: taken).
    async fn write(&self, record: &AuditRecord, events: &[DomainEvent]) -> Result<bool, StoreError> {
        const FREE: &str = "attribute_not_exists(pk)";
        let item = Self::item(record)?;
        if events.is_empty() {
            // One item: a conditional Put is cheaper than a transaction.
            let put = self.ddb.put_item().table_name(&self.table).set_item(Some(item)).condition_expression(FREE);
            return match put.send().await {
                Ok(_) => Ok(true),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
                Err(e) => Err(unavailable(e)),
            };
        }
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(FREE)
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for e in events {
            items.push(TransactWriteItem::builder().put(outbox_put(&self.main, e)?).build());
        }
        match self.ddb.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            // The place was taken (or a concurrent transaction held it).
            Err(e) if condition_failed_at(&e, 0).is_some() => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The record an item of the audit table holds (a stream's image).
    pub fn record_of(item: &Item) -> Result<AuditRecord, StoreError> {
        from_item(item)
    }

    /// A clinic's records in chain order from place `after + 1`, at most
    /// `limit` (for verifying and exporting); the place to go on from.
    pub async fn chain(&self, clinic: &str, after: u64, limit: i32) -> Result<Vec<AuditRecord>, StoreError> {
        let got = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk > :after")
            .expression_attribute_values(":pk", s(pk(clinic)))
            .expression_attribute_values(":after", s(sk(after)))
            .limit(limit)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        got.items.unwrap_or_default().iter().map(from_item).collect()
    }

    /// One page of a clinic's records, newest first, from the index the
    /// filter names: the subject's, else the actor's, else the clinic's by
    /// time; a subject and an actor together narrow the subject's.
    pub async fn query(
        &self,
        clinic: &str,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<AuditPage, StoreError> {
        let (index, hash_name, hash) = match (&filter.subject_id, &filter.actor_id) {
            (Some(subject), _) => ("bysubject", "spk", format!("{clinic}#{subject}")),
            (None, Some(actor)) => ("byactor", "apk", format!("{clinic}#{actor}")),
            (None, None) => ("bytime", "pk", pk(clinic)),
        };
        let start = cursor.map(|c| decode_cursor(c, hash_name, &hash, clinic)).transpose()?;
        let from = filter.from.map(|t| format!("{}#", sort_time(t))).unwrap_or_else(|| "0".into());
        // `~` sorts after every digit: the whole of the last millisecond.
        let to = filter.to.map(|t| format!("{}#~", sort_time(t))).unwrap_or_else(|| "~".into());
        let mut q = self
            .ddb
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#h = :h AND #at BETWEEN :from AND :to")
            .expression_attribute_names("#h", hash_name)
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":h", s(hash))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start);
        if let (Some(_), Some(actor)) = (&filter.subject_id, &filter.actor_id) {
            q = q.filter_expression("apk = :apk").expression_attribute_values(":apk", s(format!("{clinic}#{actor}")));
        }
        let page = q.send().await.map_err(unavailable)?;
        let items = page.items.unwrap_or_default().iter().map(from_item).collect::<Result<_, _>>()?;
        let next_cursor = page.last_evaluated_key.map(|k| encode_cursor(&k));
        Ok(AuditPage { items, next_cursor })
    }
}

fn from_item(item: &Item) -> Result<AuditRecord, StoreError> {
    let text = string(item, "record").ok_or_else(|| StoreError::Corrupt("no record".into()))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode_cursor(key: &Item) -> String {
    let map: serde_json::Map<String, serde_json::Value> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), serde_json::Value::String(s.clone()))))
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::Value::Object(map).to_string())
}

/// A cursor is taken only if this store could have made it for this query:
/// the same index and partition, this clinic's records.
fn decode_cursor(cursor: &str, hash_name: &str, hash: &str, clinic: &str) -> Result<Item, StoreError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let map: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    let expected = if hash_name == "pk" { 3 } else { 4 };
    let ok = map.len() == expected
        && map.get(hash_name).map(String::as_str) == Some(hash)
        && map.get("pk").map(String::as_str) == Some(pk(clinic).as_str())
        && map.get("sk").is_some_and(|sk| sk.starts_with("SEQ#"))
        && map.get("at").is_some_and(|at| at.len() <= 64);
    if !ok {
        return Err(StoreError::BadCursor);
    }
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_for_another_clinic_or_index_is_refused() {
        let key: Item = HashMap::from([
            ("pk".to_owned(), s("AUDIT#c1")),
            ("sk".to_owned(), s(sk(7))),
            ("at".to_owned(), s("2026-12-02T10:00:00.000Z#00000000000000000007")),
            ("spk".to_owned(), s("c1#rm_1")),
        ]);
        let cursor = encode_cursor(&key);
        assert!(decode_cursor(&cursor, "spk", "c1#rm_1", "c1").is_ok());
        assert!(matches!(decode_cursor(&cursor, "spk", "c2#rm_1", "c2"), Err(StoreError::BadCursor)));
        assert!(matches!(decode_cursor(&cursor, "apk", "c1#rm_1", "c1"), Err(StoreError::BadCursor)));
        assert!(matches!(decode_cursor(&cursor, "pk", "AUDIT#c1", "c1"), Err(StoreError::BadCursor)));
        for bad in ["", "!!", "e30", &URL_SAFE_NO_PAD.encode("[1]")] {
            assert!(matches!(decode_cursor(bad, "pk", "AUDIT#c1", "c1"), Err(StoreError::BadCursor)), "{bad}");
        }
    }
}
