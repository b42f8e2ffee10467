use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use vcare_domain::consent::SentTo;
use vcare_domain::events::DomainEvent;
use vcare_domain::notification::Notification;

use crate::items::{
    Item, condition_failed_at, get_versioned, key, put, put_where, string, update_versioned, update_versioned_from,
    update_versioned_with, versioned_item,
};
use crate::receipts::notification_pk;
use crate::reconcile::notification_index;
use crate::{StoreError, outbox, s, unavailable};

#[derive(Debug, Clone)]
pub struct NotificationStore {
    pub(crate) ddb: Client,
    pub(crate) table: String,
}

/// What accepting a request under an `Idempotency-Key` came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    New,
    /// The key was used before: with the same request (`same_request`) the
    /// first response stands; with another it is a conflict.
    Existing {
        notification_id: String,
        same_request: bool,
    },
    /// A request with the key is being written right now.
    InProgress,
}

fn notification_key(clinic: &str, id: &str) -> Item {
    key(notification_pk(clinic, id), "NOTIF")
}

impl NotificationStore {
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        Self { ddb, table: table.into() }
    }

    /// Writes the notification, its idempotency record and its outbox
    /// record in one transaction, unless the key (`key_hash`, a hash of the
    /// client's key) was used and has not expired. `also` (a far
    /// `sendAt`'s due entry) is written in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn accept(
        &self,
        n: &Notification,
        key_hash: &str,
        request_hash: &str,
        event: &DomainEvent,
        now: DateTime<Utc>,
        keep: chrono::Duration,
        also: Option<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<Accepted, StoreError> {
        let idem_key = key(format!("IDEMP#{}#{key_hash}", n.clinic_id), "IDEMP");
        let mut idem = idem_key.clone();
        idem.insert("kind".into(), s("idempotency"));
        idem.insert("status".into(), s("COMPLETED"));
        idem.insert("requestHash".into(), s(request_hash));
        idem.insert("notificationId".into(), s(&n.notification_id));
        idem.insert("expiresAt".into(), AttributeValue::N((now + keep).timestamp().to_string()));
        let expired = [(":now", AttributeValue::N(now.timestamp().to_string()))];
        let mut items = vec![
            put_where(&self.table, idem, Some("attribute_not_exists(pk) OR expiresAt < :now"), &expired)?,
            put(
                &self.table,
                {
                    let mut item =
                        versioned_item(n, notification_key(&n.clinic_id, &n.notification_id), "notification", 1)?;
                    item.extend(notification_index(n));
                    item
                },
                Some("attribute_not_exists(pk)"),
            )?,
        ];
        items.extend(outbox(&self.table, std::slice::from_ref(event))?);
        items.extend(also);
        let read_back = async || -> Result<Option<(String, bool)>, StoreError> {
            let got = self
                .ddb
                .get_item()
                .table_name(&self.table)
                .set_key(Some(idem_key.clone()))
                .consistent_read(true)
                .send()
                .await
                .map_err(unavailable)?;
            // An expired record is no one's (the condition lets a new request overwrite it).
            let live = |record: &Item| {
                record.get("expiresAt").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok())
                    >= Some(now.timestamp())
            };
            Ok(got.item.filter(live).map(|record| {
                let id = string(&record, "notificationId").unwrap_or_default();
                (id, string(&record, "requestHash").as_deref() == Some(request_hash))
            }))
        };
        match self.ddb.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Accepted::New),
            Err(e) => match condition_failed_at(&e, 0) {
                // The outcome is unknown (a timeout, a 5xx after the commit):
                // the key's record tells whether this write happened.
                None => match read_back().await {
                    Ok(Some((id, _))) if id == n.notification_id => Ok(Accepted::New),
                    Ok(Some((notification_id, same_request))) => {
                        Ok(Accepted::Existing { notification_id, same_request })
                    }
                    _ => Err(unavailable(e)),
                },
                Some(false) => Ok(Accepted::InProgress),
                Some(true) => Ok(match read_back().await? {
                    None => Accepted::InProgress,
                    Some((notification_id, same_request)) => Accepted::Existing { notification_id, same_request },
                }),
            },
        }
    }

    pub async fn get(&self, clinic: &str, id: &str) -> Result<Option<(Notification, u64)>, StoreError> {
        get_versioned(&self.ddb, &self.table, notification_key(clinic, id)).await
    }

    /// See [`crate::items::update_versioned_from`]: from a value and version
    /// just read; returns the new value, its version and whether it changed.
    pub async fn update_from<F>(
        &self,
        known: (Notification, u64),
        change: F,
    ) -> Result<(Notification, u64, bool), StoreError>
    where
        F: Fn(&Notification) -> Option<(Notification, Vec<DomainEvent>)>,
    {
        let key = notification_key(&known.0.clinic_id, &known.0.notification_id);
        update_versioned_from(&self.ddb, &self.table, key, "notification", notification_index, known, change).await
    }

    /// [`Self::update_from`] for an SMS being recorded sent: the number's
    /// entry in the SMS index (what a reply or keyword from it is read
    /// against) is written in the same transaction, not in a call of its own.
    pub async fn update_from_noting<F>(
        &self,
        known: (Notification, u64),
        change: F,
        hash: &str,
        sent: &SentTo,
    ) -> Result<(Notification, u64, bool), StoreError>
    where
        F: Fn(&Notification) -> Option<(Notification, Vec<DomainEvent>)>,
    {
        let key = notification_key(&known.0.clinic_id, &known.0.notification_id);
        let also = [crate::ConsentStore::sent_to_update(&self.table, hash, sent)?];
        update_versioned_with(&self.ddb, &self.table, key, "notification", notification_index, known, change, &also)
            .await
    }

    /// See [`crate::items::update_versioned`].
    pub async fn update<F>(&self, clinic: &str, id: &str, change: F) -> Result<Option<(Notification, bool)>, StoreError>
    where
        F: Fn(&Notification) -> Option<(Notification, Vec<DomainEvent>)>,
    {
        update_versioned(
            &self.ddb,
            &self.table,
            notification_key(clinic, id),
            "notification",
            notification_index,
            change,
        )
        .await
    }

    /// Remembers push tokens a provider declared dead (by hash, per clinic,
    /// for `keep`), so later notifications do not carry them.
    pub async fn mark_dead_tokens(
        &self,
        clinic: &str,
        hashes: &[String],
        now: DateTime<Utc>,
        keep: chrono::Duration,
    ) -> Result<(), StoreError> {
        for chunk in hashes.chunks(25) {
            let writes = chunk
                .iter()
                .map(|h| {
                    let mut item = key(format!("DEADTOKEN#{clinic}#{h}"), "DEADTOKEN");
                    item.insert("kind".into(), s("dead-token"));
                    item.insert("expiresAt".into(), AttributeValue::N((now + keep).timestamp().to_string()));
                    let put = aws_sdk_dynamodb::types::PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    Ok(aws_sdk_dynamodb::types::WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.ddb.batch_write_item().request_items(&self.table, writes).send().await.map_err(unavailable)?;
        }
        Ok(())
    }

    /// Which of these token hashes are known dead in the clinic.
    pub async fn dead_tokens(
        &self,
        clinic: &str,
        hashes: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut dead = std::collections::HashSet::new();
        for chunk in hashes.chunks(100) {
            let keys: Vec<Item> = chunk.iter().map(|h| key(format!("DEADTOKEN#{clinic}#{h}"), "DEADTOKEN")).collect();
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let got =
                self.ddb.batch_get_item().request_items(&self.table, request).send().await.map_err(unavailable)?;
            for item in got.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                if let Some(h) = string(&item, "pk").and_then(|pk| pk.rsplit('#').next().map(str::to_owned)) {
                    dead.insert(h);
                }
            }
        }
        Ok(dead)
    }
}
