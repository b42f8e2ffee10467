//! The audit query: a clinic's records newest first, sealed or not, from
//! every shard at once (one Query per shard, merged by position), through
//! the index the filter names.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use vcare_domain::audit::{AuditRecord, SHARDS};

use super::{AuditStore, from_item, pk};
use crate::items::string;
use crate::{StoreError, s, sort_time, unavailable};

/// Which records a query asks for; the newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub subject_id: Option<String>,
    pub actor_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub items: Vec<AuditRecord>,
    pub next_cursor: Option<String>,
}

/// Where a query reads: the base table (a shard's records by time), or an index.
#[derive(Debug, Clone, Copy)]
enum Reading {
    Time,
    Subject,
    Actor,
}

impl Reading {
    fn name(self) -> &'static str {
        match self {
            Self::Time => "time",
            Self::Subject => "subject",
            Self::Actor => "actor",
        }
    }
}

impl AuditStore {
    /// One page of a clinic's records, newest first, from the index the
    /// filter names: the subject's, else the actor's, else the clinic's by
    /// time; a subject and an actor together narrow the subject's.
    pub async fn query(
        &self,
        clinic: &str,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<AuditPage, StoreError> {
        let reading = match (&filter.subject_id, &filter.actor_id) {
            (Some(_), _) => Reading::Subject,
            (None, Some(_)) => Reading::Actor,
            (None, None) => Reading::Time,
        };
        let before = cursor.map(|c| decode_cursor(c, reading)).transpose()?;
        let from = filter.from.map(|t| format!("{}#", sort_time(t))).unwrap_or_else(|| "0".into());
        // `~` sorts after `#` and every id: the whole of the last millisecond.
        let mut to = filter.to.map(|t| format!("{}#~", sort_time(t))).unwrap_or_else(|| "~".into());
        if let Some(b) = &before {
            // BETWEEN is inclusive: the cursor's own record is dropped below.
            to = to.min(b.clone());
        }
        // Every shard's page at once: the page costs one round trip.
        let mut shards = tokio::task::JoinSet::new();
        for shard in 0..SHARDS {
            let (store, clinic, filter) = (self.clone(), clinic.to_owned(), filter.clone());
            let (from, to) = (from.clone(), to.clone());
            shards
                .spawn(async move { store.shard_page(&clinic, &filter, reading, shard, &from, &to, limit + 1).await });
        }
        let mut items: Vec<(String, AuditRecord)> = Vec::new();
        let mut more = false;
        while let Some(page) = shards.join_next().await {
            let (page, has_more) = page.map_err(|e| StoreError::Unavailable(e.to_string()))??;
            more |= has_more;
            items.extend(page.into_iter().filter(|(position, _)| Some(position) != before.as_ref()));
        }
        items.sort_by(|a, b| b.0.cmp(&a.0));
        let limit = usize::try_from(limit).unwrap_or(1);
        more |= items.len() > limit;
        items.truncate(limit);
        let next_cursor =
            (more && items.len() == limit).then(|| items.last().map(|(p, _)| encode_cursor(reading, p))).flatten();
        Ok(AuditPage { items: items.into_iter().map(|(_, r)| r).collect(), next_cursor })
    }

    /// One shard's newest records in range: (position, record), and whether it has more.
    #[allow(clippy::too_many_arguments)]
    async fn shard_page(
        &self,
        clinic: &str,
        filter: &AuditFilter,
        reading: Reading,
        shard: u8,
        from: &str,
        to: &str,
        limit: i32,
    ) -> Result<(Vec<(String, AuditRecord)>, bool), StoreError> {
        let (index, hash_name, range_name, hash) = match reading {
            Reading::Subject => (
                Some("bysubject"),
                "spk",
                "at",
                format!("{clinic}#{}#{shard}", filter.subject_id.as_deref().unwrap_or_default()),
            ),
            Reading::Actor => (
                Some("byactor"),
                "apk",
                "at",
                format!("{clinic}#{}#{shard}", filter.actor_id.as_deref().unwrap_or_default()),
            ),
            Reading::Time => (None, "pk", "sk", pk(clinic, shard)),
        };
        let mut q = self
            .ddb
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression("#h = :h AND #r BETWEEN :from AND :to")
            .expression_attribute_names("#h", hash_name)
            .expression_attribute_names("#r", range_name)
            .expression_attribute_values(":h", s(hash))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .scan_index_forward(false)
            .limit(limit);
        if let (Reading::Subject, Some(actor)) = (reading, &filter.actor_id) {
            q = q
                .filter_expression("apk = :apk")
                .expression_attribute_values(":apk", s(format!("{clinic}#{actor}#{shard}")));
        }
        let page = q.send().await.map_err(unavailable)?;
        let items = page
            .items
            .unwrap_or_default()
            .iter()
            .map(|i| Ok((string(i, "at").unwrap_or_default(), from_item(i)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((items, page.last_evaluated_key.is_some()))
    }
}

fn encode_cursor(reading: Reading, position: &str) -> String {
    let map = HashMap::from([("by", reading.name()), ("before", position)]);
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&map).unwrap_or_default())
}

/// A cursor is taken only if this store could have made it for this
/// query's index: a position of a record, nothing else.
fn decode_cursor(cursor: &str, reading: Reading) -> Result<String, StoreError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let map: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    let before = map.get("before").filter(|b| (26..=200).contains(&b.len()) && b.contains("#aud_"));
    match (map.len(), map.get("by").map(String::as_str), before) {
        (2, Some(by), Some(before)) if by == reading.name() => Ok(before.clone()),
        _ => Err(StoreError::BadCursor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_for_another_index_or_of_another_shape_is_refused() {
        let position = "2026-12-02T10:00:00.000Z#aud_abc";
        let cursor = encode_cursor(Reading::Subject, position);
        assert_eq!(decode_cursor(&cursor, Reading::Subject).unwrap(), position);
        assert!(matches!(decode_cursor(&cursor, Reading::Actor), Err(StoreError::BadCursor)));
        assert!(matches!(decode_cursor(&cursor, Reading::Time), Err(StoreError::BadCursor)));
        for bad in ["", "!!", "e30", &URL_SAFE_NO_PAD.encode("[1]"), &encode_cursor(Reading::Time, "x")] {
            assert!(matches!(decode_cursor(bad, Reading::Time), Err(StoreError::BadCursor)), "{bad}");
        }
    }
}
