//! A clinic's templates: every save an immutable version
//! (`TPL#<clinic>#<name>` / `V#<00000001>`), and a head (`HEAD`) that holds
//! the active one whole, so the accept path reads one item. Heads are in
//! `gsi1` under `TPLS#<clinic>` for the list.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use vcare_domain::templates::Template;

use crate::items::{Item, condition_failed_at, get_item, key, put, put_where, query_gsi1};
use crate::{StoreError, s, unavailable};

/// The most versions a template keeps an index of (the list shows heads only).
pub const MAX_TEMPLATES_LISTED: usize = 500;

fn pk(clinic: &str, name: &str) -> String {
    format!("TPL#{clinic}#{name}")
}

fn version_sk(v: u64) -> String {
    format!("V#{v:08}")
}

fn to_item(t: &Template, k: Item) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(t).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    item.extend(k);
    item.insert("kind".into(), s("template"));
    Ok(item)
}

fn from_item(item: Item) -> Result<Template, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[derive(Debug, Clone)]
pub struct TemplateStore {
    ddb: Client,
    table: String,
}

impl TemplateStore {
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        Self { ddb, table: table.into() }
    }

    /// The clinic's active version of `name`, if it has one.
    pub async fn active(&self, clinic: &str, name: &str) -> Result<Option<Template>, StoreError> {
        get_item(&self.ddb, &self.table, key(pk(clinic, name), "HEAD")).await?.map(from_item).transpose()
    }

    /// Version `version` of the clinic's `name`.
    pub async fn version(&self, clinic: &str, name: &str, version: u64) -> Result<Option<Template>, StoreError> {
        get_item(&self.ddb, &self.table, key(pk(clinic, name), &version_sk(version))).await?.map(from_item).transpose()
    }

    /// Keeps `template` as the next version of its name and makes it the
    /// active one; a concurrent save takes the next number.
    pub async fn save(
        &self,
        clinic: &str,
        template: &Template,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<Template, StoreError> {
        for _ in 0..crate::items::MAX_ATTEMPTS {
            let head = self.active(clinic, &template.name).await?;
            let current = head.as_ref().and_then(|h| h.version).unwrap_or(0);
            let mut next = template.clone();
            next.version = Some(current + 1);
            next.created_at = Some(at);
            next.created_by = Some(by.to_owned());
            let version = put(
                &self.table,
                to_item(&next, key(pk(clinic, &next.name), &version_sk(current + 1)))?,
                Some("attribute_not_exists(pk)"),
            )?;
            let mut head_item = to_item(&next, key(pk(clinic, &next.name), "HEAD"))?;
            head_item.insert("gsi1pk".into(), s(format!("TPLS#{clinic}")));
            head_item.insert("gsi1sk".into(), s(&next.name));
            let head_put = if current == 0 {
                put(&self.table, head_item, Some("attribute_not_exists(pk)"))?
            } else {
                put_where(
                    &self.table,
                    head_item,
                    Some("version = :v"),
                    &[(":v", AttributeValue::N(current.to_string()))],
                )?
            };
            match self.ddb.transact_write_items().transact_items(version).transact_items(head_put).send().await {
                Ok(_) => return Ok(next),
                Err(e) if condition_failed_at(&e, 0).is_some() => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(StoreError::Contention)
    }

    /// The clinic's templates, each as its active version, by name.
    pub async fn list(&self, clinic: &str) -> Result<Vec<Template>, StoreError> {
        let items = query_gsi1(&self.ddb, &self.table, &format!("TPLS#{clinic}"), None, MAX_TEMPLATES_LISTED).await?;
        items.into_iter().map(from_item).collect()
    }
}
