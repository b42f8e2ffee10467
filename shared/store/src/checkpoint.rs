//! Where a scheduled job got to (`SCHED#<name>`): a time that only moves
//! forward, so a job can catch up on the minutes it missed.

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use crate::items::{get_item, key, string};
use crate::{StoreError, s, sort_time, unavailable};

#[derive(Debug, Clone)]
pub struct Checkpoints {
    ddb: Client,
    table: String,
}

impl Checkpoints {
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        Self { ddb, table: table.into() }
    }

    pub async fn get(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        get_item(&self.ddb, &self.table, key(format!("SCHED#{name}"), "SCHED"))
            .await?
            .and_then(|i| string(&i, "last"))
            .map(|t| DateTime::parse_from_rfc3339(&t).map(|t| t.with_timezone(&Utc)))
            .transpose()
            .map_err(|_| StoreError::Corrupt("checkpoint".into()))
    }

    /// Moves the checkpoint to `to`, never back (a slower overlapping run
    /// cannot undo a faster one).
    pub async fn advance(&self, name: &str, to: DateTime<Utc>) -> Result<(), StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("SCHED#{name}"), "SCHED")))
            .update_expression("SET #last = :t")
            .condition_expression("attribute_not_exists(#last) OR #last < :t")
            .expression_attribute_names("#last", "last")
            .expression_attribute_values(":t", s(sort_time(to)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}
