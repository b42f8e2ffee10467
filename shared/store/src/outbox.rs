//! The outbox as the relay sees it: records still to publish (a sparse
//! index, `gsi1pk = OUTBOX#PENDING`, ordered by time), and marking one
//! published: it moves to its hour's partition of the same index
//! (`OUTBOX#PUBLISHED#<yyyy-mm-ddThh>`, by event time), where replays find
//! a time range without a scan, until TTL removes it after
//! `OUTBOX_RETENTION_DAYS` (7).

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

    /// Its event's CloudEvents `type` and `clinicid` (empty where missing).
    pub fn event_type_and_clinic(&self) -> (String, String) {
        let event: serde_json::Value = serde_json::from_str(&self.event).unwrap_or_default();
        let text = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
        (text("type"), text("clinicid"))
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

    /// Every published record (until TTL removes it, 7 days) whose event
    /// happened in `[from, to)`, oldest first: one query per hour of the
    /// range, each of that hour's published index partition (no scan).
    /// Records not yet published are not here: the relay publishes them.
    pub async fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<OutboxRecord>, StoreError> {
        let mut out = Vec::new();
        let mut hour = hour_of(from);
        while hour < to {
            let mut start = None;
            loop {
                let page = self
                    .ddb
                    .query()
                    .table_name(&self.table)
                    .index_name("gsi1")
                    .key_condition_expression("gsi1pk = :p AND gsi1sk BETWEEN :from AND :to")
                    .expression_attribute_values(":p", AttributeValue::S(published_partition(hour)))
                    .expression_attribute_values(":from", AttributeValue::S(sort_time(from)))
                    .expression_attribute_values(":to", AttributeValue::S(sort_time(to)))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(unavailable)?;
                out.extend(page.items.unwrap_or_default().iter().filter_map(OutboxRecord::from_item));
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            hour += chrono::Duration::hours(1);
        }
        Ok(out)
    }

    /// Moves a published record from the pending index to its hour's
    /// published partition (what replays query); a record that is gone —
    /// expired by TTL — has nothing left to mark.
    pub async fn mark_published(&self, record: &OutboxRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
        let happened = record.written_at().unwrap_or(now);
        let marked = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("OUTBOX#{}", record.event_id), "OUTBOX")))
            .update_expression("SET publishedAt = :now, gsi1pk = :published")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", AttributeValue::S(sort_time(now)))
            .expression_attribute_values(":published", AttributeValue::S(published_partition(hour_of(happened))))
            .send()
            .await;
        match marked {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// The start of `t`'s hour.
fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::{DurationRound, TimeDelta};
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// The published index partition of the hour starting at `hour`.
fn published_partition(hour: DateTime<Utc>) -> String {
    format!("OUTBOX#PUBLISHED#{}", hour.format("%Y-%m-%dT%H"))
}
