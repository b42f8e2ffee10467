//! Schedules (`SCHED#<clinic>#<id>`), created under an Idempotency-Key
//! with their first due entry in one transaction; every change moves the
//! due entry in the same transaction as the schedule, so the index holds
//! exactly the occurrence each active schedule waits for.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use chrono::{DateTime, Utc};
use vcare_domain::due::{Due, DueKind};
use vcare_domain::schedule::Schedule;

use crate::due::DueStore;
use crate::items::{
    Item, condition_failed_at, get_item, get_versioned, key, put, put_where, query_gsi1, string, update_versioned_with,
    versioned_from, versioned_item,
};
use crate::{StoreError, s, sort_time, unavailable};

/// The most schedules a recipient's list shows.
pub const MAX_SCHEDULES_LISTED: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleCreated {
    New,
    Existing { schedule_id: String, same_request: bool },
    InProgress,
}

fn schedule_key(clinic: &str, id: &str) -> Item {
    key(format!("SCHED#{clinic}#{id}"), "SCHED")
}

fn index(s_: &Schedule) -> Item {
    match &s_.user_id {
        Some(user) => Item::from([
            ("gsi1pk".to_owned(), s(format!("SCHEDU#{}#{user}", s_.clinic_id))),
            ("gsi1sk".to_owned(), s(format!("{}#{}", sort_time(s_.created_at), s_.schedule_id))),
        ]),
        None => Item::new(),
    }
}

/// The due entry a schedule's state calls for.
pub fn occurrence(s_: &Schedule) -> Option<Due> {
    s_.next_at.map(|at| Due { at, kind: DueKind::Occurrence, clinic: s_.clinic_id.clone(), id: s_.schedule_id.clone() })
}

#[derive(Debug, Clone)]
pub struct ScheduleStore {
    ddb: Client,
    table: String,
    due: DueStore,
}

impl ScheduleStore {
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self { due: DueStore::new(ddb.clone(), table.clone()), ddb, table }
    }

    pub fn due(&self) -> &DueStore {
        &self.due
    }

    /// The schedule, its idempotency record and its first due entry, unless
    /// the key (`key_hash`) was used and has not expired.
    pub async fn create(
        &self,
        sched: &Schedule,
        key_hash: &str,
        request_hash: &str,
        now: DateTime<Utc>,
        keep: chrono::Duration,
    ) -> Result<ScheduleCreated, StoreError> {
        let idem_key = key(format!("IDEMP#SCHED#{}#{key_hash}", sched.clinic_id), "IDEMP");
        let mut idem = idem_key.clone();
        idem.insert("kind".into(), s("idempotency"));
        idem.insert("requestHash".into(), s(request_hash));
        idem.insert("scheduleId".into(), s(&sched.schedule_id));
        idem.insert("expiresAt".into(), AttributeValue::N((now + keep).timestamp().to_string()));
        let expired = [(":now", AttributeValue::N(now.timestamp().to_string()))];
        let mut item = versioned_item(sched, schedule_key(&sched.clinic_id, &sched.schedule_id), "schedule", 1)?;
        item.extend(index(sched));
        let mut items = vec![
            put_where(&self.table, idem, Some("attribute_not_exists(pk) OR expiresAt < :now"), &expired)?,
            put(&self.table, item, Some("attribute_not_exists(pk)"))?,
        ];
        if let Some(d) = occurrence(sched) {
            items.push(self.due.put(&d)?);
        }
        match self.ddb.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(ScheduleCreated::New),
            Err(e) => match condition_failed_at(&e, 0) {
                None => Err(unavailable(e)),
                Some(false) => Ok(ScheduleCreated::InProgress),
                Some(true) => {
                    let Some(record) = get_item(&self.ddb, &self.table, idem_key).await? else {
                        return Ok(ScheduleCreated::InProgress);
                    };
                    Ok(ScheduleCreated::Existing {
                        schedule_id: string(&record, "scheduleId").unwrap_or_default(),
                        same_request: string(&record, "requestHash").as_deref() == Some(request_hash),
                    })
                }
            },
        }
    }

    pub async fn get(&self, clinic: &str, id: &str) -> Result<Option<(Schedule, u64)>, StoreError> {
        get_versioned(&self.ddb, &self.table, schedule_key(clinic, id)).await
    }

    /// A recipient's schedules, oldest first (the index holds whole items:
    /// one query, no read per schedule).
    pub async fn of_user(&self, clinic: &str, user: &str) -> Result<Vec<Schedule>, StoreError> {
        let items =
            query_gsi1(&self.ddb, &self.table, &format!("SCHEDU#{clinic}#{user}"), None, MAX_SCHEDULES_LISTED).await?;
        items.into_iter().map(|i| versioned_from(i).map(|(s, _)| s)).collect()
    }

    /// Applies `change` (a pure transition) and moves the due entry with it.
    pub async fn update<F>(&self, known: (Schedule, u64), change: F) -> Result<(Schedule, bool), StoreError>
    where
        F: Fn(&Schedule) -> Option<Schedule>,
    {
        let mut current = known;
        for _ in 0..crate::items::MAX_ATTEMPTS {
            let Some(next) = change(&current.0) else { return Ok((current.0, false)) };
            let mut also: Vec<TransactWriteItem> = Vec::new();
            let (old, new) = (occurrence(&current.0), occurrence(&next));
            if old != new {
                if let Some(d) = &old {
                    also.push(self.due.delete(d)?);
                }
                if let Some(d) = &new {
                    also.push(self.due.put(d)?);
                }
            }
            let key = schedule_key(&next.clinic_id, &next.schedule_id);
            // Only over the state `next` was made from: if it changed in
            // between, the due entries above are wrong too, so read again here.
            let from = current.0.clone();
            let (value, _, changed) = update_versioned_with(
                &self.ddb,
                &self.table,
                key,
                "schedule",
                index,
                current.clone(),
                |now| (*now == from).then(|| (next.clone(), Vec::new())),
                &also,
            )
            .await?;
            if changed {
                return Ok((value, true));
            }
            current = self.get(&next.clinic_id, &next.schedule_id).await?.ok_or(StoreError::Contention)?;
        }
        Err(StoreError::Contention)
    }

    /// Deletes the schedule and its due entry; false if there was none.
    pub async fn delete(&self, clinic: &str, id: &str) -> Result<bool, StoreError> {
        let Some((sched, version)) = self.get(clinic, id).await? else { return Ok(false) };
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(schedule_key(clinic, id)))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        if let Some(d) = occurrence(&sched) {
            items.push(self.due.delete(&d)?);
        }
        match self.ddb.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed_at(&e, 0).is_some() => Err(StoreError::Contention),
            Err(e) => Err(unavailable(e)),
        }
    }
}
