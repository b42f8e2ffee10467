//! What patients want, as stored (issue 17).
//!
//! | item | table | pk | sk |
//! |---|---|---|---|
//! | preferences | main | `PREF#<clinic>#<userId>` | `PREF` |
//! | suppression | main | `SUPP#<clinic>#<channel>#<addressHash>` | `SUPP` |
//! | newest SMS to a number | main | `SENTTO#<addressHash>` | `SENTTO` |
//! | inbound message handled | main | `INBOUND#<provider>#<sha256(messageId)>` | `INBOUND` (TTL) |
//! | consent history line | history (`CONSENT_TABLE_NAME`) | `CONSENT#<clinic>#<subject>` | `<time>#<random>` |
//!
//! The history table is append-only: every line is a Put under
//! `attribute_not_exists`, in the same transaction as the change it
//! records, and no function's IAM grants an update or delete on it.
//! Addresses appear only as keyed hashes.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, TransactWriteItem, Update};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use vcare_domain::consent::{ConsentEntry, Preferences, SentTo, Suppression};
use vcare_domain::events::DomainEvent;
use vcare_domain::notification::Channel;

use crate::items::{Item, condition_failed_at, get_item, key, put, put_where, string, versioned_from, versioned_item};
use crate::{StoreError, outbox_put, s, sort_time, unavailable};

/// How long a handled inbound message id is remembered (providers retry
/// for hours at most), with its sealed text.
pub const INBOUND_KEEP_DAYS: i64 = 30;

#[derive(Debug, Clone)]
pub struct ConsentStore {
    ddb: Client,
    table: String,
    history: String,
}

fn preferences_key(clinic: &str, user: &str) -> Item {
    key(format!("PREF#{clinic}#{user}"), "PREF")
}

fn suppression_key(clinic: &str, channel: Channel, hash: &str) -> Item {
    key(format!("SUPP#{clinic}#{}#{hash}", channel.as_str()), "SUPP")
}

fn sent_to_key(hash: &str) -> Item {
    key(format!("SENTTO#{hash}"), "SENTTO")
}

fn inbound_key(provider: &str, message_id: &str) -> Item {
    key(format!("INBOUND#{provider}#{}", vcare_domain::digest::sha256_hex(message_id.as_bytes())), "INBOUND")
}

fn history_pk(clinic: &str, subject: &str) -> String {
    format!("CONSENT#{clinic}#{subject}")
}

fn json<T: serde::Serialize>(v: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(v).map(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    let text = string(item, name).ok_or_else(|| StoreError::Corrupt(format!("no {name}")))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A page of the consent history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentPage {
    pub items: Vec<ConsentEntry>,
    pub next_cursor: Option<String>,
}

impl ConsentStore {
    pub fn new(ddb: Client, table: impl Into<String>, history: impl Into<String>) -> Self {
        Self { ddb, table: table.into(), history: history.into() }
    }

    /// The history lines of `entry` for each subject, as Puts that never
    /// replace a line. `seq` orders the lines of one change.
    fn history_puts(
        &self,
        clinic: &str,
        subjects: &[&str],
        entry: &ConsentEntry,
        seq: usize,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        subjects
            .iter()
            .map(|subject| {
                let sk = format!("{}#{seq:03}#{:016x}", sort_time(entry.at), vcare_domain::ids::random_u64());
                let item = HashMap::from([
                    ("pk".to_owned(), s(history_pk(clinic, subject))),
                    ("sk".to_owned(), s(sk)),
                    ("entry".to_owned(), json(entry)?),
                ]);
                put(&self.history, item, Some("attribute_not_exists(pk)"))
            })
            .collect()
    }

    /// The write of one history line for `subject`, for a transaction of
    /// another store's (a recording consent is written with its room).
    pub fn history_line(
        &self,
        clinic: &str,
        subject: &str,
        entry: &ConsentEntry,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut puts = self.history_puts(clinic, &[subject], entry, 0)?;
        puts.pop().ok_or_else(|| StoreError::Corrupt("no history line".into()))
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        match self.ddb.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed_at(&e, 0) == Some(true) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    pub async fn preferences(&self, clinic: &str, user: &str) -> Result<Option<(Preferences, u64)>, StoreError> {
        get_item(&self.ddb, &self.table, preferences_key(clinic, user)).await?.map(versioned_from).transpose()
    }

    /// Saves preferences read at `version` (`None`: none were stored) with
    /// their history lines, in one transaction. `false`: someone saved
    /// them in between (read again and re-apply).
    pub async fn save_preferences(
        &self,
        clinic: &str,
        user: &str,
        prefs: &Preferences,
        version: Option<u64>,
        history: &[ConsentEntry],
    ) -> Result<bool, StoreError> {
        let item = versioned_item(prefs, preferences_key(clinic, user), "preferences", version.unwrap_or(0) + 1)?;
        let mut items = vec![match version {
            None => put(&self.table, item, Some("attribute_not_exists(pk)"))?,
            Some(v) => put_where(&self.table, item, Some("version = :v"), &[(":v", AttributeValue::N(v.to_string()))])?,
        }];
        for (seq, entry) in history.iter().enumerate() {
            items.extend(self.history_puts(clinic, &[user], entry, seq)?);
        }
        self.transact(items).await
    }

    /// What the gate needs, in one read: the user's preferences (if any)
    /// and which of the addresses (by channel) are suppressed.
    pub async fn gate_inputs(
        &self,
        clinic: &str,
        user: Option<&str>,
        hashes: &BTreeMap<Channel, String>,
    ) -> Result<(Option<Preferences>, Vec<Channel>), StoreError> {
        let mut keys: Vec<Item> = hashes.iter().map(|(c, h)| suppression_key(clinic, *c, h)).collect();
        keys.extend(user.map(|u| preferences_key(clinic, u)));
        if keys.is_empty() {
            return Ok((None, Vec::new()));
        }
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut pending = HashMap::from([(self.table.clone(), request)]);
        let (mut prefs, mut suppressed) = (None, Vec::new());
        // BatchGetItem may hand some keys back unprocessed: ask again.
        for _ in 0..5 {
            let got = self.ddb.batch_get_item().set_request_items(Some(pending)).send().await.map_err(unavailable)?;
            for item in got.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                match string(&item, "sk").as_deref() {
                    Some("PREF") => prefs = Some(versioned_from::<Preferences>(item)?.0),
                    Some("SUPP") => {
                        let pk = string(&item, "pk").unwrap_or_default();
                        if let Some((c, _)) = hashes.iter().find(|(c, h)| pk.ends_with(&format!("#{}#{h}", c.as_str())))
                        {
                            suppressed.push(*c);
                        }
                    }
                    _ => {}
                }
            }
            match got.unprocessed_keys.filter(|u| !u.is_empty()) {
                Some(left) => pending = left,
                None => return Ok((prefs, suppressed)),
            }
        }
        Err(StoreError::Unavailable("BatchGetItem left keys unprocessed".into()))
    }

    pub async fn suppression(
        &self,
        clinic: &str,
        channel: Channel,
        hash: &str,
    ) -> Result<Option<Suppression>, StoreError> {
        get_item(&self.ddb, &self.table, suppression_key(clinic, channel, hash))
            .await?
            .map(|item| from_json(&item, "suppression"))
            .transpose()
    }

    /// Puts the address on the list with its history line (for each
    /// subject). `false`: it was on the list already, nothing written.
    pub async fn suppress(
        &self,
        clinic: &str,
        channel: Channel,
        hash: &str,
        subjects: &[&str],
        entry: &ConsentEntry,
    ) -> Result<bool, StoreError> {
        let mut item = suppression_key(clinic, channel, hash);
        item.insert("kind".into(), s("suppression"));
        item.insert("suppression".into(), json(&Suppression { since: entry.at, source: entry.source })?);
        let mut items = vec![put(&self.table, item, Some("attribute_not_exists(pk)"))?];
        items.extend(self.history_puts(clinic, subjects, entry, 0)?);
        self.transact(items).await
    }

    /// Takes the address off the list with its history line. `false`: it
    /// was not on the list, nothing written.
    pub async fn lift(
        &self,
        clinic: &str,
        channel: Channel,
        hash: &str,
        subjects: &[&str],
        entry: &ConsentEntry,
    ) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(suppression_key(clinic, channel, hash)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        items.extend(self.history_puts(clinic, subjects, entry, 0)?);
        self.transact(items).await
    }

    /// The history of `subject`, newest first, `limit` at a time.
    pub async fn consents(
        &self,
        clinic: &str,
        subject: &str,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<ConsentPage, StoreError> {
        let pk = history_pk(clinic, subject);
        let start = cursor
            .map(|c| {
                let sk = URL_SAFE_NO_PAD.decode(c).ok().and_then(|b| String::from_utf8(b).ok());
                let sk = sk.filter(|sk| sk.len() <= 64 && sk.contains('#')).ok_or(StoreError::BadCursor)?;
                Ok::<_, StoreError>(HashMap::from([("pk".to_owned(), s(&pk)), ("sk".to_owned(), s(sk))]))
            })
            .transpose()?;
        let page = self
            .ddb
            .query()
            .table_name(&self.history)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(&pk))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        let items = page.items.unwrap_or_default().iter().map(|i| from_json(i, "entry")).collect::<Result<_, _>>()?;
        let next_cursor =
            page.last_evaluated_key.and_then(|k| string(&k, "sk")).map(|sk| URL_SAFE_NO_PAD.encode(sk.as_bytes()));
        Ok(ConsentPage { items, next_cursor })
    }

    /// The newest SMS sent to a number, as an update for the transaction
    /// that records it sent: the clinic, user, language and time; the
    /// message's offer of replies when it made one (one that offered none
    /// keeps the offer before it). No condition: it must never fail the
    /// record (two SMS to one number at the same instant: the later write wins).
    pub(crate) fn sent_to_update(table: &str, hash: &str, sent: &SentTo) -> Result<TransactWriteItem, StoreError> {
        let mut set = vec!["lastAt = :t", "clinicId = :c", "kind = :k"];
        let mut remove = Vec::new();
        let mut values = vec![(":t", s(sort_time(sent.at))), (":c", s(&sent.clinic_id)), (":k", s("sent-to"))];
        for (name, value, placeholder, assignment) in
            [("userId", &sent.user_id, ":u", "userId = :u"), ("locale", &sent.locale, ":l", "locale = :l")]
        {
            match value {
                Some(v) => {
                    values.push((placeholder, s(v)));
                    set.push(assignment);
                }
                None => remove.push(name),
            }
        }
        if let Some(offer) = &sent.offer {
            values.push((":o", json(offer)?));
            set.push("offer = :o");
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let mut update =
            Update::builder().table_name(table).set_key(Some(sent_to_key(hash))).update_expression(expression);
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        let update = update.build().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub async fn sent_to(&self, hash: &str) -> Result<Option<SentTo>, StoreError> {
        let Some(item) = get_item(&self.ddb, &self.table, sent_to_key(hash)).await? else { return Ok(None) };
        let at = string(&item, "lastAt").and_then(|t| t.parse::<DateTime<Utc>>().ok());
        let (Some(clinic_id), Some(at)) = (string(&item, "clinicId"), at) else {
            return Err(StoreError::Corrupt("sent-to without clinic or time".into()));
        };
        let offer = string(&item, "offer").map(|o| serde_json::from_str(&o)).transpose();
        Ok(Some(SentTo {
            clinic_id,
            user_id: string(&item, "userId"),
            locale: string(&item, "locale"),
            at,
            offer: offer.map_err(|e| StoreError::Corrupt(e.to_string()))?,
        }))
    }

    /// Whether the provider's inbound message was handled before.
    pub async fn inbound_seen(&self, provider: &str, message_id: &str) -> Result<bool, StoreError> {
        Ok(get_item(&self.ddb, &self.table, inbound_key(provider, message_id)).await?.is_some())
    }

    /// Marks the inbound message handled (with its text sealed, when it
    /// was free text), with the events it emits, once.
    pub async fn mark_inbound(
        &self,
        provider: &str,
        message_id: &str,
        sealed_text: Option<&str>,
        events: &[DomainEvent],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut item = inbound_key(provider, message_id);
        item.insert("kind".into(), s("inbound"));
        item.insert("receivedAt".into(), s(sort_time(now)));
        item.insert("expiresAt".into(), AttributeValue::N((now.timestamp() + INBOUND_KEEP_DAYS * 86_400).to_string()));
        if let Some(text) = sealed_text {
            item.insert("sealedText".into(), s(text));
        }
        let mut items = vec![put(&self.table, item, Some("attribute_not_exists(pk)"))?];
        for e in events {
            items.push(TransactWriteItem::builder().put(outbox_put(&self.table, e)?).build());
        }
        self.transact(items).await
    }
}
