//! The single table (infra/template.yaml `Table`), as vcare uses it:
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | room | `ROOM#<clinic>#<roomId>` | `ROOM` | |
//! | appointment → room | `APPT#<clinic>#<appointmentId>` | `APPT` | |
//! | Jitsi name → room | `JITSI#<jitsiRoom>` | `JITSI` | |
//! | membership | `ROOM#<clinic>#<roomId>` | `MEMBER#<userId>` | `USER#<clinic>#<userId>` / `<start>#<roomId>` |
//! | image, issue, reservation, contact, pending end | `ROOM#<clinic>#<roomId>` | `IMAGE#…`, `ISSUE#…`, `RESERVATION`, `CONTACT#<userId>`, `JITSI_END` | |
//! | notification, raw receipt | see `receipts` | | |
//! | template version, active head | `TPL#<clinic>#<name>` | `V#<n>`, `HEAD` | head: `TPLS#<clinic>` / `<name>` |
//! | schedule | `SCHED#<clinic>#<id>` | `SCHED` | `SCHEDU#<clinic>#<userId>` / `<createdAt>#<id>` |
//! | due entry | `DUE#<shard>` | `<instant>#<kind>#<clinic>#<id>` | |
//! | outbox record | `OUTBOX#<eventId>` | `OUTBOX` | `OUTBOX#PENDING` / `<time>#<eventId>` (sparse) |
//!
//! Every state change is one `TransactWriteItems`: the new state under a
//! condition (the version read, or the item's absence) plus its outbox
//! records, so an event exists exactly when its change does.

mod audit;
mod consent;
mod dial_in;
mod due;
pub mod items;
mod notifications;
mod outbox;
mod receipts;
mod reconcile;
mod recordings;
mod room_records;
mod rooms;
mod schedules;
mod templates;
mod webhooks;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put};
use chrono::{DateTime, Utc};
use vcare_domain::events::DomainEvent;

pub use audit::{AuditFilter, AuditPage, AuditStore, SweepPosition};
pub use consent::{ConsentPage, ConsentStore, INBOUND_KEEP_DAYS};
pub use due::{DueStore, SHARDS as DUE_SHARDS, shard as due_shard};
pub use notifications::{Accepted, NotificationStore};
pub use outbox::{OutboxRecord, OutboxStore};
pub use receipts::{Applied, KeptReceipt};
pub use rooms::{Created, HistoryPage, RoomStore, decode_cursor};
pub use schedules::{ScheduleCreated, ScheduleStore};
pub use templates::TemplateStore;
pub use webhooks::{EndpointCreated, WebhookStore};

/// How long an outbox record stays after it was written (TTL), published or
/// not; the relay's sweep runs far more often.
pub const OUTBOX_RETENTION_DAYS: i64 = 7;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB failed or was unreachable; retrying may help. The text is for
    /// logs (it holds no item contents).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Another writer kept winning the race for the same item.
    #[error("too much contention on one item")]
    Contention,
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    #[error("bad cursor")]
    BadCursor,
}

pub(crate) fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A time as sort keys want it: fixed width, so text order is time order.
pub fn sort_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The outbox records of events, as parts of a transaction.
pub(crate) fn outbox(
    table: &str,
    events: &[DomainEvent],
) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StoreError> {
    events
        .iter()
        .map(|e| Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder().put(outbox_put(table, e)?).build()))
        .collect()
}

/// The outbox record of an event, as a Put for the transaction that makes the
/// change it reports.
pub fn outbox_put(table: &str, event: &DomainEvent) -> Result<Put, StoreError> {
    let expires = event.time.timestamp() + OUTBOX_RETENTION_DAYS * 86_400;
    let item = HashMap::from([
        ("pk".to_owned(), s(format!("OUTBOX#{}", event.id))),
        ("sk".to_owned(), s("OUTBOX")),
        ("kind".to_owned(), s("outbox")),
        ("eventType".to_owned(), s(event.kind)),
        ("aggregateId".to_owned(), s(&event.aggregate_id)),
        ("clinicId".to_owned(), s(&event.clinic_id)),
        ("event".to_owned(), s(event.to_cloud_event().to_string())),
        ("eventTime".to_owned(), s(sort_time(event.time))),
        ("gsi1pk".to_owned(), s("OUTBOX#PENDING")),
        ("gsi1sk".to_owned(), s(format!("{}#{}", sort_time(event.time), event.id))),
        ("expiresAt".to_owned(), AttributeValue::N(expires.to_string())),
    ]);
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}
