//! The outbox as the relay sees it: records still to publish (a sparse
//! index, `gsi1pk = OUTBOX#PENDING`, ordered by time), and marking one
//! published (it leaves the index; TTL removes it after
//! `OUTBOX_RETENTION_DAYS`).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use crate::items::{Item, key, query_gsi1, string};
use crate::{StoreError, sort_time, unavailable};

/// An outbox record: the event as published, and what orders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub event_id: String,
    pub aggregate_id: String,
    /// The CloudEvents JSON, as it goes on the queue.
    pub event: String,
}

impl OutboxRecord {
    /// When its event happened (the CloudEvents `time`): the relay's lag
    /// is measured from it.
    pub fn written_at(&self) -> Option<DateTime<Utc>> {
        let event: serde_json::Value = serde_json::from_str(&self.event).ok()?;
        DateTime::parse_from_rfc3339(event["time"].as_str()?).ok().map(|t| t.with_timezone(&Utc))
    }

    /// Its event's CloudEvents `type` (empty if it has none).
    pub fn event_type(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.event)
            .ok()
            .and_then(|e| e["type"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// From a stored item (or a stream image of one); `None` if it is not
    /// an outbox record.
    pub fn from_item(item: &Item) -> Option<Self> {
        if string(item, "kind").as_deref() != Some("outbox") {
            return None;
        }
        Some(Self {
            event_id: string(item, "pk")?.strip_prefix("OUTBOX#")?.to_owned(),
            aggregate_id: string(item, "aggregateId")?,
            event: string(item, "event")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct OutboxStore {
    ddb: Client,
    table: String,
}

impl OutboxStore {
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        Self { ddb, table: table.into() }
    }

    /// Unpublished records written before `before`, oldest first.
    pub async fn pending(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        let items = query_gsi1(&self.ddb, &self.table, "OUTBOX#PENDING", Some(sort_time(before)), limit).await?;
        Ok(items.iter().filter_map(OutboxRecord::from_item).collect())
    }

    /// Every record (published or not, until TTL removes it) whose event
    /// happened in `[from, to)`, oldest first. A scan: for operators'
    /// replays, not for any request path.
    pub async fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<OutboxRecord>, StoreError> {
        let mut out: Vec<(String, OutboxRecord)> = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .ddb
                .scan()
                .table_name(&self.table)
                .filter_expression("kind = :k AND eventTime >= :from AND eventTime < :to")
                .expression_attribute_values(":k", AttributeValue::S("outbox".into()))
                .expression_attribute_values(":from", AttributeValue::S(sort_time(from)))
                .expression_attribute_values(":to", AttributeValue::S(sort_time(to)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items.unwrap_or_default() {
                if let (Some(t), Some(r)) = (string(&item, "eventTime"), OutboxRecord::from_item(&item)) {
                    out.push((t, r));
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                out.sort_by(|a, b| a.0.cmp(&b.0));
                return Ok(out.into_iter().map(|(_, r)| r).collect());
            }
        }
    }

    /// Takes a published record out of the pending index (a record that is
    /// gone — expired by TTL — has nothing left to mark).
    pub async fn mark_published(&self, event_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let marked = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("OUTBOX#{event_id}"), "OUTBOX")))
            .update_expression("SET publishedAt = :now REMOVE gsi1pk, gsi1sk")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", AttributeValue::S(sort_time(now)))
            .send()
            .await;
        match marked {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}
