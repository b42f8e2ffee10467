//! The building blocks every store here uses: keys, conditional puts for
//! transactions, versioned items and the read-apply-write loop.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::Serialize;
use serde::de::DeserializeOwned;
use vcare_domain::events::DomainEvent;

use crate::{StoreError, outbox, s, unavailable};

pub type Item = HashMap<String, AttributeValue>;

/// How often a conditional update re-reads and retries before giving up.
pub const MAX_ATTEMPTS: usize = 5;

pub fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub fn put(table: &str, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    put_where(table, item, condition, &[])
}

/// A Put for a transaction, with an optional condition and its values.
pub fn put_where(
    table: &str,
    item: Item,
    condition: Option<&str>,
    values: &[(&str, AttributeValue)],
) -> Result<TransactWriteItem, StoreError> {
    let mut put =
        Put::builder().table_name(table).set_item(Some(item)).set_condition_expression(condition.map(str::to_owned));
    for (name, v) in values {
        put = put.expression_attribute_values(*name, v.clone());
    }
    let put = put.build().map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

pub fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// Was the transaction cancelled because the condition of item `index`
/// failed (`Some(true)`), for another reason such as a conflict with a
/// concurrent transaction (`Some(false)`), or did it fail otherwise (`None`)?
pub fn condition_failed_at<R>(e: &SdkError<TransactWriteItemsError, R>, index: usize) -> Option<bool> {
    let TransactWriteItemsError::TransactionCanceledException(c) = e.as_service_error()? else {
        return None;
    };
    Some(c.cancellation_reasons().get(index).and_then(|r| r.code()) == Some("ConditionalCheckFailed"))
}

/// No index attributes.
pub fn unindexed<T>(_: &T) -> Item {
    Item::new()
}

/// A value as an item under `key`, with its kind and version.
pub fn versioned_item<T: Serialize>(value: &T, key: Item, kind: &str, version: u64) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    item.extend(key);
    item.insert("kind".into(), s(kind));
    item.insert("version".into(), AttributeValue::N(version.to_string()));
    Ok(item)
}

pub fn versioned_from<T: DeserializeOwned>(item: Item) -> Result<(T, u64), StoreError> {
    let version = match item.get("version") {
        Some(AttributeValue::N(n)) => n.parse().map_err(|_| StoreError::Corrupt("version".into()))?,
        _ => return Err(StoreError::Corrupt("item without version".into())),
    };
    let value = serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok((value, version))
}

pub async fn get_versioned<T: DeserializeOwned>(
    ddb: &Client,
    table: &str,
    key: Item,
) -> Result<Option<(T, u64)>, StoreError> {
    let got =
        ddb.get_item().table_name(table).set_key(Some(key)).consistent_read(true).send().await.map_err(unavailable)?;
    got.item.map(versioned_from).transpose()
}

/// Applies `change` to the current value and writes the result with its
/// events, only if nobody changed the item in between (version check); on a
/// race it re-reads and re-applies. `change` returning `None` means "nothing
/// to do" (an idempotent repeat): nothing is written. Returns the value as it
/// now is, and whether this call changed it; `None` if there is no item.
pub async fn update_versioned<T, F>(
    ddb: &Client,
    table: &str,
    key: Item,
    kind: &str,
    index: fn(&T) -> Item,
    change: F,
) -> Result<Option<(T, bool)>, StoreError>
where
    T: Serialize + DeserializeOwned + Clone,
    F: Fn(&T) -> Option<(T, Vec<DomainEvent>)>,
{
    let Some(current) = get_versioned::<T>(ddb, table, key.clone()).await? else { return Ok(None) };
    let (value, _, changed) = update_versioned_from(ddb, table, key, kind, index, current, change).await?;
    Ok(Some((value, changed)))
}

/// [`update_versioned`] starting from a value and version the caller has
/// just read (saving a read on the hot path); re-reads only on a race.
/// `index` gives the index attributes (`gsi1pk`, `gsi1sk`) the new value
/// should have, if any.
/// Returns the value, its version and whether this call changed it. An item
/// deleted meanwhile is `StoreError::Corrupt`.
pub async fn update_versioned_from<T, F>(
    ddb: &Client,
    table: &str,
    key: Item,
    kind: &str,
    index: fn(&T) -> Item,
    known: (T, u64),
    change: F,
) -> Result<(T, u64, bool), StoreError>
where
    T: Serialize + DeserializeOwned + Clone,
    F: Fn(&T) -> Option<(T, Vec<DomainEvent>)>,
{
    update_versioned_with(ddb, table, key, kind, index, known, change, &[]).await
}

/// [`update_versioned_from`], with `also` written in the same transaction
/// when the change applies (items that must never fail it: no conditions).
#[allow(clippy::too_many_arguments)]
pub async fn update_versioned_with<T, F>(
    ddb: &Client,
    table: &str,
    key: Item,
    kind: &str,
    index: fn(&T) -> Item,
    known: (T, u64),
    change: F,
    also: &[TransactWriteItem],
) -> Result<(T, u64, bool), StoreError>
where
    T: Serialize + DeserializeOwned + Clone,
    F: Fn(&T) -> Option<(T, Vec<DomainEvent>)>,
{
    let mut current = known;
    for _ in 0..MAX_ATTEMPTS {
        let (value, version) = &current;
        let Some((next, events)) = change(value) else { return Ok((value.clone(), *version, false)) };
        let expected = [(":v", AttributeValue::N(version.to_string()))];
        let mut item = versioned_item(&next, key.clone(), kind, version + 1)?;
        item.extend(index(&next));
        let mut items = vec![put_where(table, item, Some("version = :v"), &expected)?];
        items.extend(outbox(table, &events)?);
        items.extend(also.iter().cloned());
        match ddb.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => return Ok((next, version + 1, true)),
            Err(e) if condition_failed_at(&e, 0).is_some() => {
                current = get_versioned::<T>(ddb, table, key.clone())
                    .await?
                    .ok_or_else(|| StoreError::Corrupt(format!("{kind} vanished")))?;
            }
            Err(e) => return Err(unavailable(e)),
        }
    }
    Err(StoreError::Contention)
}

/// One item by key, strongly consistent.
pub async fn get_item(ddb: &Client, table: &str, key: Item) -> Result<Option<Item>, StoreError> {
    let got =
        ddb.get_item().table_name(table).set_key(Some(key)).consistent_read(true).send().await.map_err(unavailable)?;
    Ok(got.item)
}

/// Writes an item only if none has its key; `Ok(false)`: one is there.
pub async fn put_if_absent(ddb: &Client, table: &str, item: Item) -> Result<bool, StoreError> {
    put_if(ddb.put_item().table_name(table).set_item(Some(item)).condition_expression("attribute_not_exists(pk)")).await
}

/// A conditional `PutItem`; `Ok(false)`: its condition did not hold.
pub async fn put_if(
    put: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
) -> Result<bool, StoreError> {
    match put.send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
        Err(e) => Err(unavailable(e)),
    }
}

/// The items of one `gsi1` partition, in sort-key order, optionally only
/// those sorting before `below`, at most `limit`: every page read.
pub async fn query_gsi1(
    ddb: &Client,
    table: &str,
    partition: &str,
    below: Option<String>,
    limit: usize,
) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let mut query = ddb
            .query()
            .table_name(table)
            .index_name("gsi1")
            .expression_attribute_values(":p", s(partition))
            .set_exclusive_start_key(start);
        query = match &below {
            Some(b) => {
                query.key_condition_expression("gsi1pk = :p AND gsi1sk < :b").expression_attribute_values(":b", s(b))
            }
            None => query.key_condition_expression("gsi1pk = :p"),
        };
        let page = query.send().await.map_err(unavailable)?;
        out.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() || out.len() >= limit {
            out.truncate(limit);
            return Ok(out);
        }
    }
}

/// Everything under partition `pk`, every page, read consistently: its
/// items (none where `count_only`) and how many there are.
pub async fn whole_partition(
    ddb: &Client,
    table: &str,
    pk: String,
    count_only: bool,
) -> Result<(Vec<Item>, u64), StoreError> {
    let (mut items, mut count, mut start) = (Vec::new(), 0u64, None);
    loop {
        let mut query = ddb
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk.clone()))
            .consistent_read(true)
            .set_exclusive_start_key(start);
        if count_only {
            query = query.select(aws_sdk_dynamodb::types::Select::Count);
        }
        let page = query.send().await.map_err(unavailable)?;
        count += u64::try_from(page.count).unwrap_or_default();
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(k) => start = Some(k),
            None => return Ok((items, count)),
        }
    }
}
