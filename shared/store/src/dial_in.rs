//! Dial-in PINs as stored (issue 20).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | a room's PIN (written with the room, only if no room has it) | `DIALIN#<pin>` | `DIALIN` (`clinicId`, `roomId`) |
//! | PIN lookups that found nothing, this minute | `DIALMISS#<minute>` | `DIALMISS` (`misses`, TTL) |

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Utc};

use crate::items::{Item, key, string};
use crate::{RoomStore, StoreError, unavailable};

pub(crate) fn dial_in_key(pin: u64) -> Item {
    key(format!("DIALIN#{pin}"), "DIALIN")
}

fn misses_key(at: DateTime<Utc>) -> Item {
    key(format!("DIALMISS#{}", at.format("%Y-%m-%dT%H:%M")), "DIALMISS")
}

/// What a PIN lookup found, in one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinLookup {
    /// Lookups this minute that found nothing, this one not counted.
    pub misses: u64,
    /// The room the PIN is for: (clinic, room id).
    pub room: Option<(String, String)>,
}

impl RoomStore {
    /// The PIN's room and this minute's misses, in one BatchGetItem.
    pub async fn dial_in_pin(&self, pin: u64, now: DateTime<Utc>) -> Result<PinLookup, StoreError> {
        let keys = KeysAndAttributes::builder()
            .keys(dial_in_key(pin))
            .keys(misses_key(now))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let got = self.client().batch_get_item().request_items(self.table(), keys).send().await.map_err(unavailable)?;
        let items = got.responses.and_then(|mut r| r.remove(self.table())).unwrap_or_default();
        let mut found = PinLookup { misses: 0, room: None };
        for item in items {
            match string(&item, "sk").as_deref() {
                Some("DIALIN") => found.room = string(&item, "clinicId").zip(string(&item, "roomId")),
                Some("DIALMISS") => {
                    found.misses = match item.get("misses") {
                        Some(AttributeValue::N(n)) => n.parse().unwrap_or(u64::MAX),
                        _ => 0,
                    }
                }
                _ => {}
            }
        }
        Ok(found)
    }

    /// Counts a lookup that found nothing (kept a day).
    pub async fn count_dial_in_miss(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let expires = (now.timestamp() + 86_400).to_string();
        self.client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(misses_key(now)))
            .update_expression("ADD misses :one SET expiresAt = :ttl")
            .set_expression_attribute_values(Some(HashMap::from([
                (":one".to_owned(), AttributeValue::N("1".into())),
                (":ttl".to_owned(), AttributeValue::N(expires)),
            ])))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
