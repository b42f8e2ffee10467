//! Dial-in PINs as stored (issue 20).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | a room's PIN (written with the room, only if no room has it) | `DIALIN#<pin>` | `DIALIN` (`clinicId`, `roomId`) |
//! | PIN lookups of one source this minute that found nothing, or are in flight | `DIALMISS#<minute>#<source's digest>` | `DIALMISS` (`misses`, TTL) |
//!
//! A lookup takes its place in its source's count before the PIN is read,
//! in one conditional write (`misses < limit`), so concurrent guesses
//! cannot all pass a check made before any of them is counted; a lookup
//! that found its room gives its place back.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use crate::items::{Item, key, string};
use crate::{RoomStore, StoreError, unavailable};

pub(crate) fn dial_in_key(pin: u64) -> Item {
    key(format!("DIALIN#{pin}"), "DIALIN")
}

fn misses_key(source: &str, at: DateTime<Utc>) -> Item {
    // The source (an address is personal data) only as a digest.
    let digest = vcare_domain::digest::sha256_hex(source.as_bytes());
    key(format!("DIALMISS#{}#{}", at.format("%Y-%m-%dT%H:%M"), &digest[..32]), "DIALMISS")
}

impl RoomStore {
    /// The PIN's room: (clinic, room id).
    pub async fn dial_in_pin(&self, pin: u64) -> Result<Option<(String, String)>, StoreError> {
        let got = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(dial_in_key(pin)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(got.item.and_then(|item| string(&item, "clinicId").zip(string(&item, "roomId"))))
    }

    /// Takes a place in `source`'s count of misses this minute, if fewer
    /// than `limit` are taken (`false`: none is left). Kept a day.
    pub async fn take_dial_in_miss(&self, source: &str, now: DateTime<Utc>, limit: u64) -> Result<bool, StoreError> {
        let expires = (now.timestamp() + 86_400).to_string();
        let update = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(misses_key(source, now)))
            .update_expression("ADD misses :one SET expiresAt = :ttl")
            .condition_expression("attribute_not_exists(misses) OR misses < :limit")
            .set_expression_attribute_values(Some(HashMap::from([
                (":one".to_owned(), AttributeValue::N("1".into())),
                (":ttl".to_owned(), AttributeValue::N(expires)),
                (":limit".to_owned(), AttributeValue::N(limit.to_string())),
            ])));
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Gives back a place taken by [`Self::take_dial_in_miss`] at `taken`
    /// (the lookup found its room).
    pub async fn give_back_dial_in_miss(&self, source: &str, taken: DateTime<Utc>) -> Result<(), StoreError> {
        self.client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(misses_key(source, taken)))
            .update_expression("ADD misses :back")
            .condition_expression("attribute_exists(misses)")
            .expression_attribute_values(":back", AttributeValue::N("-1".into()))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| match e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) {
                true => Ok(()),
                false => Err(unavailable(e)),
            })
    }
}
