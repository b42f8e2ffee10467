//! The sparse index of notifications not yet sent, by when they are
//! expected to have moved on (`reconcile_at`): what the sweep reads to put
//! back on the queue a notification whose message was lost (a host killed
//! mid-dispatch, an enqueue that failed after its write, a dead letter).
//!
//! | item | gsi1pk / gsi1sk |
//! |---|---|
//! | notification, not yet sent | `RECONCILE#<day>` / `<reconcile at>#<clinic>#<id>` |
//!
//! A notification is in at most one of the two sparse indexes: this one
//! before it is sent, the receipts' `AWAITDLR#` one after.

use chrono::{DateTime, Utc};
use vcare_domain::notification::{Notification, Status};

use crate::items::{Item, query_gsi1, string};
use crate::receipts::awaiting_index;
use crate::{NotificationStore, StoreError, s, sort_time};

/// Every index entry a notification has: awaiting a receipt, or awaiting
/// its next step.
pub(crate) fn notification_index(n: &Notification) -> Item {
    match n.reconcile_at.filter(|_| n.status.rank() < Status::Sent.rank()) {
        Some(at) => Item::from([
            ("gsi1pk".to_owned(), s(bucket(at))),
            ("gsi1sk".to_owned(), s(format!("{}#{}#{}", sort_time(at), n.clinic_id, n.notification_id))),
        ]),
        None => awaiting_index(n),
    }
}

fn bucket(day: DateTime<Utc>) -> String {
    format!("RECONCILE#{}", day.format("%Y-%m-%d"))
}

impl NotificationStore {
    /// (clinic, notification) of the day `day` whose reconcile time is
    /// before `before`, at most `limit`.
    pub async fn overdue(
        &self,
        day: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let items = query_gsi1(&self.ddb, &self.table, &bucket(day), Some(sort_time(before)), limit).await?;
        Ok(items.iter().filter_map(|i| Some((string(i, "clinicId")?, string(i, "notificationId")?))).collect())
    }
}
