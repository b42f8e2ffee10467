//! A clinic's webhook endpoints (issue 22): `WEBHOOKS#<clinic>` / `EP#<id>`,
//! and beside them the clinic's count (`COUNT`), moved in the same
//! transaction as every create and delete, so the limit holds under
//! concurrent creates.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use vcare_domain::webhooks::endpoint::Endpoint;

use crate::items::{Item, condition_failed_at, get_item, key};
use crate::{StoreError, s, unavailable};

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

fn from_item(item: Item) -> Result<Endpoint, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
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
        let written = self
            .ddb
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(count).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match written {
            Ok(_) => Ok(EndpointCreated::Created),
            Err(e) if condition_failed_at(&e, 0).is_some() => Ok(EndpointCreated::AtLimit),
            Err(e) => Err(unavailable(e)),
        }
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
        let count = self.count_update(clinic, -1, None)?;
        let done = self
            .ddb
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(TransactWriteItem::builder().update(count).build())
            .send()
            .await;
        match done {
            Ok(_) => Ok(true),
            Err(e) if condition_failed_at(&e, 0).is_some() => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}
