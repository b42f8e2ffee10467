//! Delivery receipts on notifications (issue 5).
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | notification | `NOTIF#<clinic>#<id>` | `NOTIF` | `AWAITDLR#<day sent>` / `<sent at>#<clinic>#<id>` while a final receipt is awaited |
//! | raw receipt | `NOTIF#<clinic>#<id>` | `RECEIPT#<attemptId>#<hash>` | `RECEIPT#PENDING` / `<received>#…` while its attempt is unknown |
//!
//! A receipt applies with one conditional update of the notification's
//! `delivery.<attemptId>` (rank must rise), in the same transaction as its
//! event's outbox record; the version is bumped so that dispatch's
//! version-checked writes re-read rather than overwrite it.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use vcare_domain::events::DomainEvent;
use vcare_domain::notification::{Notification, Status};
use vcare_domain::receipt::{Delivery, ReceiptRef};

use crate::items::{Item, key, put_if_absent, query_gsi1, string};
use crate::{NotificationStore, StoreError, outbox_put, s, sort_time, unavailable};

pub(crate) fn notification_pk(clinic: &str, id: &str) -> String {
    format!("NOTIF#{clinic}#{id}")
}

/// The sparse index of notifications awaiting a final receipt.
pub(crate) fn awaiting_index(n: &Notification) -> Item {
    let Some(since) = n.awaiting_receipt_since else { return Item::new() };
    Item::from([
        ("gsi1pk".to_owned(), s(awaiting_bucket(since))),
        ("gsi1sk".to_owned(), s(format!("{}#{}#{}", sort_time(since), n.clinic_id, n.notification_id))),
    ])
}

fn awaiting_bucket(day: DateTime<Utc>) -> String {
    format!("AWAITDLR#{}", day.format("%Y-%m-%d"))
}

const PENDING: &str = "RECEIPT#PENDING";

/// What became of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It moved the delivery on (and its event, if any, is in the outbox).
    Advanced,
    /// The delivery is already as far or further (a duplicate, a late one).
    Stale,
    /// No such attempt (yet): kept, to be applied when it exists.
    UnknownAttempt,
    /// The attempt went to another provider: not applied, ever.
    OtherProvider,
}

/// A raw receipt as kept in the attempt's history (personal data sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReceipt {
    pub reference: ReceiptRef,
    pub hash: String,
    pub provider: String,
    pub delivery: Delivery,
    pub sealed_raw: String,
}

fn value<T: serde::Serialize>(v: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl NotificationStore {
    /// Applies a receipt's delivery to its attempt if it advances it (one
    /// conditional update, with `event` in the same transaction). A final
    /// one also takes the notification out of the awaiting index.
    pub async fn apply_receipt(
        &self,
        r: &ReceiptRef,
        d: &Delivery,
        event: Option<&DomainEvent>,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let mut condition =
            "attribute_exists(delivery.#a) AND delivery.#a.#provider = :provider AND (delivery.#a.#rank < :rank"
                .to_owned();
        if d.status == Status::Delivered {
            condition.push_str(" OR delivery.#a.#status = :expired");
        }
        condition.push(')');
        let mut expression = "SET delivery.#a = :d, version = version + :one, updatedAt = :now".to_owned();
        if d.status.is_terminal() {
            expression.push_str(" REMOVE gsi1pk, gsi1sk, awaitingReceiptSince");
        }
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(notification_pk(&r.clinic_id, &r.notification_id), "NOTIF")))
            .update_expression(expression)
            .condition_expression(condition)
            .expression_attribute_names("#a", &r.attempt_id)
            .expression_attribute_names("#rank", "rank")
            .expression_attribute_names("#provider", "provider")
            .expression_attribute_values(":provider", s(d.provider.as_deref().unwrap_or_default()))
            .expression_attribute_values(":d", value(d)?)
            .expression_attribute_values(":rank", AttributeValue::N(d.rank.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":now", value(&now)?)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if d.status == Status::Delivered {
            update = update
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":expired", s(Status::Expired.as_str()));
        }
        let mut items = vec![TransactWriteItem::builder().update(build(update.build())?).build()];
        if let Some(e) = event {
            items.push(TransactWriteItem::builder().put(outbox_put(&self.table, e)?).build());
        }
        match self.ddb.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Applied::Advanced),
            Err(e) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
                let Some(E::TransactionCanceledException(c)) = e.as_service_error() else {
                    return Err(unavailable(e));
                };
                let first = c.cancellation_reasons().first();
                if first.and_then(|r| r.code()) != Some("ConditionalCheckFailed") {
                    // The state would advance but its event exists already:
                    // this fact was recorded before.
                    let event_exists =
                        c.cancellation_reasons().get(1).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
                    return if event_exists { Ok(Applied::Stale) } else { Err(StoreError::Contention) };
                }
                let attempt = first
                    .and_then(|r| r.item())
                    .and_then(|item| item.get("delivery"))
                    .and_then(|d| d.as_m().ok())
                    .and_then(|m| m.get(&r.attempt_id))
                    .and_then(|a| a.as_m().ok());
                Ok(match attempt {
                    None => Applied::UnknownAttempt,
                    Some(a) if a.get("provider").and_then(|p| p.as_s().ok()) != d.provider.as_ref() => {
                        Applied::OtherProvider
                    }
                    Some(_) => Applied::Stale,
                })
            }
        }
    }

    /// Keeps a raw receipt in its attempt's history; the same receipt
    /// twice is kept once. Returns whether it was new.
    pub async fn keep_receipt(&self, k: &KeptReceipt, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let r = &k.reference;
        let mut item =
            key(notification_pk(&r.clinic_id, &r.notification_id), &format!("RECEIPT#{}#{}", r.attempt_id, k.hash));
        item.insert("kind".into(), s("receipt"));
        item.insert("provider".into(), s(&k.provider));
        item.insert("delivery".into(), value(&k.delivery)?);
        item.insert("sealedRaw".into(), s(&k.sealed_raw));
        item.insert("receivedAt".into(), value(&now)?);
        put_if_absent(&self.ddb, &self.table, item).await
    }

    /// Marks a kept receipt as waiting for its attempt (or, `false`, done).
    pub async fn set_receipt_pending(
        &self,
        r: &ReceiptRef,
        hash: &str,
        pending: bool,
        received: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let request = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                notification_pk(&r.clinic_id, &r.notification_id),
                &format!("RECEIPT#{}#{hash}", r.attempt_id),
            )))
            .condition_expression("attribute_exists(pk)");
        let request = if pending {
            request
                .update_expression("SET gsi1pk = :p, gsi1sk = :t")
                .expression_attribute_values(":p", s(PENDING))
                .expression_attribute_values(":t", s(format!("{}#{r}#{hash}", sort_time(received))))
        } else {
            request.update_expression("REMOVE gsi1pk, gsi1sk")
        };
        request.send().await.map_err(unavailable)?;
        Ok(())
    }

    /// Receipts still waiting for their attempt, oldest first.
    pub async fn pending_receipts(&self, limit: usize) -> Result<Vec<(KeptReceipt, DateTime<Utc>)>, StoreError> {
        query_gsi1(&self.ddb, &self.table, PENDING, None, limit)
            .await?
            .into_iter()
            .map(|item| {
                let corrupt = || StoreError::Corrupt("receipt".into());
                let pk = string(&item, "pk").ok_or_else(corrupt)?;
                let sk = string(&item, "sk").ok_or_else(corrupt)?;
                let (clinic, notification) =
                    pk.strip_prefix("NOTIF#").and_then(|rest| rest.rsplit_once('#')).ok_or_else(corrupt)?;
                let (attempt, hash) =
                    sk.strip_prefix("RECEIPT#").and_then(|rest| rest.split_once('#')).ok_or_else(corrupt)?;
                let delivery: Delivery =
                    serde_dynamo::from_attribute_value(item.get("delivery").cloned().ok_or_else(corrupt)?)
                        .map_err(|_| corrupt())?;
                let received: DateTime<Utc> =
                    serde_dynamo::from_attribute_value(item.get("receivedAt").cloned().ok_or_else(corrupt)?)
                        .map_err(|_| corrupt())?;
                Ok((
                    KeptReceipt {
                        reference: ReceiptRef {
                            clinic_id: clinic.to_owned(),
                            notification_id: notification.to_owned(),
                            attempt_id: attempt.to_owned(),
                        },
                        hash: hash.to_owned(),
                        provider: string(&item, "provider").unwrap_or_default(),
                        delivery,
                        sealed_raw: string(&item, "sealedRaw").unwrap_or_default(),
                    },
                    received,
                ))
            })
            .collect()
    }

    /// Notifications sent on `day` and still awaiting a final receipt at
    /// `before`: (clinic, notification id).
    pub async fn awaiting_receipts(
        &self,
        day: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let items =
            query_gsi1(&self.ddb, &self.table, &awaiting_bucket(day), Some(sort_time(before)), usize::MAX).await?;
        Ok(items.iter().filter_map(|i| Some((string(i, "clinicId")?, string(i, "notificationId")?))).collect())
    }
}
