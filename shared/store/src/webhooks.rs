//! A clinic's webhook endpoints (issue 22): `WEBHOOKS#<clinic>` / `EP#<id>`,
//! and beside them the clinic's count (`COUNT`), moved in the same
//! transaction as every create and delete, so the limit holds under
//! concurrent creates.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use vcare_domain::events::DomainEvent;
use vcare_domain::webhooks::delivery::{DeliveryRecord, DeliveryState};
use vcare_domain::webhooks::endpoint::Endpoint;

use crate::items::{Item, condition_failed_at, get_item, key, put_if, put_if_absent};
use crate::{StoreError, outbox_put, s, unavailable};

/// How long a delivery's record is kept (TTL).
pub const DELIVERY_KEEP_DAYS: i64 = 30;

fn log_pk(clinic: &str, endpoint: &str) -> String {
    format!("WHLOG#{clinic}#{endpoint}")
}

fn delivery_item(r: &DeliveryRecord) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    item.extend(key(log_pk(&r.clinic_id, &r.endpoint_id), &format!("D#{}", r.delivery_id)));
    item.insert("kind".into(), s("webhook-delivery"));
    let expires = r.created_at.timestamp() + DELIVERY_KEEP_DAYS * 86_400;
    item.insert("expiresAt".into(), AttributeValue::N(expires.to_string()));
    Ok(item)
}

fn pk(clinic: &str) -> String {
    format!("WEBHOOKS#{clinic}")
}

fn sk(id: &str) -> String {
    format!("EP#{id}")
}

fn to_item(e: &Endpoint) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    item.extend(key(pk(&e.clinic_id), &sk(&e.endpoint_id)));
    item.insert("kind".into(), s("webhook-endpoint"));
    Ok(item)
}

fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Two writes as one; `false` when the first one's condition did not hold.
async fn both(ddb: &Client, first: TransactWriteItem, second: TransactWriteItem) -> Result<bool, StoreError> {
    match ddb.transact_write_items().transact_items(first).transact_items(second).send().await {
        Ok(_) => Ok(true),
        Err(e) if condition_failed_at(&e, 0).is_some() => Ok(false),
        Err(e) => Err(unavailable(e)),
    }
}

/// What a create came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointCreated {
    Created,
    /// The clinic has its most endpoints already.
    AtLimit,
}

#[derive(Debug, Clone)]
pub struct WebhookStore {
    ddb: Client,
    table: String,
}

impl WebhookStore {
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        Self { ddb, table: table.into() }
    }

    fn count_update(&self, clinic: &str, by: i64, limit: Option<usize>) -> Result<Update, StoreError> {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk(clinic), "COUNT")))
            .update_expression("ADD n :by")
            .expression_attribute_values(":by", AttributeValue::N(by.to_string()));
        if let Some(max) = limit {
            u = u
                .condition_expression("attribute_not_exists(n) OR n < :max")
                .expression_attribute_values(":max", AttributeValue::N(max.to_string()));
        }
        u.build().map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// Keeps `endpoint` if its clinic has fewer than `limit`.
    pub async fn create(&self, endpoint: &Endpoint, limit: usize) -> Result<EndpointCreated, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(endpoint)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let count = self.count_update(&endpoint.clinic_id, 1, Some(limit))?;
        let count = TransactWriteItem::builder().update(count).build();
        let created = both(&self.ddb, count, TransactWriteItem::builder().put(put).build()).await?;
        Ok(if created { EndpointCreated::Created } else { EndpointCreated::AtLimit })
    }

    pub async fn get(&self, clinic: &str, id: &str) -> Result<Option<Endpoint>, StoreError> {
        get_item(&self.ddb, &self.table, key(pk(clinic), &sk(id))).await?.map(from_item).transpose()
    }

    /// The clinic's endpoints (at most its limit: one page).
    pub async fn list(&self, clinic: &str) -> Result<Vec<Endpoint>, StoreError> {
        let got = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :ep)")
            .expression_attribute_values(":pk", s(pk(clinic)))
            .expression_attribute_values(":ep", s("EP#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        got.items.unwrap_or_default().into_iter().map(from_item).collect()
    }

    /// Removes an endpoint; `false` if there was none.
    pub async fn delete(&self, clinic: &str, id: &str) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk(clinic), &sk(id))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let count = TransactWriteItem::builder().update(self.count_update(clinic, -1, None)?).build();
        both(&self.ddb, TransactWriteItem::builder().delete(delete).build(), count).await
    }

    /// Keeps a new delivery; `false` if it is there already (the same
    /// event to the same endpoint again).
    pub async fn add_delivery(&self, record: &DeliveryRecord) -> Result<bool, StoreError> {
        put_if_absent(&self.ddb, &self.table, delivery_item(record)?).await
    }

    pub async fn delivery(&self, clinic: &str, endpoint: &str, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        let item = get_item(&self.ddb, &self.table, key(log_pk(clinic, endpoint), &format!("D#{id}"))).await?;
        item.map(from_item).transpose()
    }

    /// Saves a delivery only if it is still as it was read (`was`: its
    /// state and how many tries it had); `false`: another worker's try or
    /// a redelivery came first.
    pub async fn save_delivery(
        &self,
        record: &DeliveryRecord,
        was: (DeliveryState, usize),
    ) -> Result<bool, StoreError> {
        let state = serde_dynamo::to_attribute_value(was.0).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let put = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(delivery_item(record)?))
            .condition_expression("#state = :state AND size(tries) = :tries")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", state)
            .expression_attribute_values(":tries", AttributeValue::N(was.1.to_string()));
        put_if(put).await
    }

    /// Sets (or, `None`, clears) since when the endpoint has failed.
    pub async fn set_failing(
        &self,
        clinic: &str,
        id: &str,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), StoreError> {
        let update = self.ddb.update_item().table_name(&self.table).set_key(Some(key(pk(clinic), &sk(id))));
        let update = match since {
            Some(t) => update
                .update_expression("SET failingSince = :t")
                .expression_attribute_values(":t", s(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))),
            None => update.update_expression("REMOVE failingSince"),
        };
        match update.condition_expression("attribute_exists(pk)").send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Disables an enabled endpoint with `event` (its outbox record) in the
    /// same transaction; `false` if it was not enabled (or is gone).
    pub async fn disable(&self, clinic: &str, id: &str, reason: &str, event: &DomainEvent) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk(clinic), &sk(id))))
            .update_expression("SET enabled = :no, disabledReason = :why")
            .condition_expression("enabled = :yes")
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":why", s(reason))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let event = TransactWriteItem::builder().put(outbox_put(&self.table, event)?).build();
        both(&self.ddb, TransactWriteItem::builder().update(update).build(), event).await
    }

    /// An endpoint's deliveries, newest event first (their ids begin with
    /// the event's time); `cursor` is the last id of the page before.
    pub async fn deliveries(
        &self,
        clinic: &str,
        endpoint: &str,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<DeliveryRecord>, Option<String>), StoreError> {
        let pk = log_pk(clinic, endpoint);
        let start = match cursor {
            Some(c) if vcare_domain::webhooks::delivery::is_delivery_id(c) => Some(key(pk.clone(), &format!("D#{c}"))),
            Some(_) => return Err(StoreError::BadCursor),
            None => None,
        };
        let page = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :d)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":d", s("D#"))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let items: Vec<DeliveryRecord> =
            page.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<_, _>>()?;
        let next = page.last_evaluated_key.and_then(|_| items.last().map(|r| r.delivery_id.clone()));
        Ok((items, next))
    }
}
