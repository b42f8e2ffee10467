use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{KeysAndAttributes, TransactWriteItem};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use vcare_domain::events::DomainEvent;
use vcare_domain::room::Room;

use crate::items::{
    Item, condition_failed_at, get_item, get_versioned, key, put, put_if_absent, string, unindexed, update_versioned,
    update_versioned_with, versioned_from, versioned_item,
};
use crate::{StoreError, outbox, s, sort_time, unavailable};

use crate::dial_in::dial_in_key;
use crate::items::MAX_ATTEMPTS;

#[derive(Debug, Clone)]
pub struct RoomStore {
    pub(crate) ddb: Client,
    pub(crate) table: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New(Room),
    /// The appointment already has a room; `same_request` tells a replay
    /// from a conflicting request.
    Existing {
        room: Room,
        same_request: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub rooms: Vec<Room>,
    pub next_cursor: Option<String>,
}

pub(crate) fn room_pk(clinic: &str, room_id: &str) -> String {
    format!("ROOM#{clinic}#{room_id}")
}

fn room_key(room: &Room) -> Item {
    key(room_pk(&room.clinic_id, &room.room_id), "ROOM")
}

impl RoomStore {
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        Self { ddb, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.ddb
    }

    /// Creates the room for its appointment unless the appointment has one:
    /// one transaction puts the room, the appointment and Jitsi-name claims
    /// (each only if absent), the memberships and the outbox record, so two
    /// concurrent creates can never both succeed.
    pub async fn create(
        &self,
        room: &Room,
        fingerprint: &str,
        event: &DomainEvent,
        dues: &[vcare_domain::due::Due],
    ) -> Result<Created, StoreError> {
        let due_store = crate::DueStore::new(self.ddb.clone(), self.table.clone());
        let mut room = room.clone();
        let appt_key = key(format!("APPT#{}#{}", room.clinic_id, room.appointment_id), "APPT");
        for _ in 0..MAX_ATTEMPTS {
            let mut appt = appt_key.clone();
            appt.insert("roomId".into(), s(&room.room_id));
            appt.insert("fingerprint".into(), s(fingerprint));
            let mut jitsi = key(format!("JITSI#{}", room.jitsi_room), "JITSI");
            jitsi.insert("clinicId".into(), s(&room.clinic_id));
            jitsi.insert("roomId".into(), s(&room.room_id));
            let mut items = vec![
                put(&self.table, versioned_item(&room, room_key(&room), "room", 1)?, Some("attribute_not_exists(pk)"))?,
                put(&self.table, appt, Some("attribute_not_exists(pk)"))?,
                put(&self.table, jitsi, Some("attribute_not_exists(pk)"))?,
            ];
            // Index 3: the dial-in PIN, which must be no other room's.
            if let Some(pin) = room.dial_in_pin {
                let mut dial = dial_in_key(pin);
                dial.insert("clinicId".into(), s(&room.clinic_id));
                dial.insert("roomId".into(), s(&room.room_id));
                items.push(put(&self.table, dial, Some("attribute_not_exists(pk)"))?);
            }
            for p in &room.participants {
                let mut member = key(room_pk(&room.clinic_id, &room.room_id), &format!("MEMBER#{}", p.user_id));
                member.insert("gsi1pk".into(), s(format!("USER#{}#{}", room.clinic_id, p.user_id)));
                member.insert("gsi1sk".into(), s(format!("{}#{}", sort_time(room.scheduled_start), room.room_id)));
                items.push(put(&self.table, member, None)?);
            }
            items.extend(outbox(&self.table, std::slice::from_ref(event))?);
            for d in dues {
                items.push(due_store.put(d)?);
            }
            match self.ddb.transact_write_items().set_transact_items(Some(items)).send().await {
                Ok(_) => return Ok(Created::New(room.clone())),
                Err(e) if room.dial_in_pin.is_some() && condition_failed_at(&e, 3) == Some(true) => {
                    // Another room's PIN (one in 9·10⁹ per room): draw again.
                    room.dial_in_pin = Some(vcare_domain::dial_in::new_pin(vcare_domain::ids::random_u64()));
                }
                Err(e) => {
                    let appointment_taken = condition_failed_at(&e, 1);
                    if appointment_taken.is_none() {
                        return Err(unavailable(e));
                    }
                    // Taken, or a concurrent create's transaction is in flight:
                    // read the claim; if absent yet, try again.
                    let got = self
                        .ddb
                        .get_item()
                        .table_name(&self.table)
                        .set_key(Some(appt_key.clone()))
                        .consistent_read(true)
                        .send()
                        .await
                        .map_err(unavailable)?;
                    if let Some(claim) = got.item {
                        let room_id =
                            string(&claim, "roomId").ok_or_else(|| StoreError::Corrupt("appointment claim".into()))?;
                        let (existing, _) = self
                            .get(&room.clinic_id, &room_id)
                            .await?
                            .ok_or_else(|| StoreError::Corrupt("appointment claim without room".into()))?;
                        let same_request = string(&claim, "fingerprint").as_deref() == Some(fingerprint);
                        return Ok(Created::Existing { room: existing, same_request });
                    }
                }
            }
        }
        Err(StoreError::Contention)
    }

    /// The room and its version (strongly consistent: one read).
    pub async fn get(&self, clinic: &str, room_id: &str) -> Result<Option<(Room, u64)>, StoreError> {
        let got = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(room_pk(clinic, room_id), "ROOM")))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        got.item.map(versioned_from).transpose()
    }

    /// The room of an appointment, if it has one.
    pub async fn by_appointment(&self, clinic: &str, appointment_id: &str) -> Result<Option<(Room, u64)>, StoreError> {
        let claim = get_item(&self.ddb, &self.table, key(format!("APPT#{clinic}#{appointment_id}"), "APPT")).await?;
        match claim.map(|claim| string(&claim, "roomId")) {
            None => Ok(None),
            Some(Some(room_id)) => self.get(clinic, &room_id).await,
            Some(None) => Err(StoreError::Corrupt("appointment claim".into())),
        }
    }

    /// The room a Jitsi room name belongs to (Jitsi's callbacks know only it).
    pub async fn by_jitsi_room(&self, jitsi_room: &str) -> Result<Option<(Room, u64)>, StoreError> {
        let Some(pointer) = get_item(&self.ddb, &self.table, key(format!("JITSI#{jitsi_room}"), "JITSI")).await? else {
            return Ok(None);
        };
        match (string(&pointer, "clinicId"), string(&pointer, "roomId")) {
            (Some(clinic), Some(room_id)) => self.get(&clinic, &room_id).await,
            _ => Err(StoreError::Corrupt("Jitsi name pointer".into())),
        }
    }

    /// Applies `change` to the current room and writes the result with its
    /// events, only if nobody changed the room in between (version check);
    /// on a race it re-reads and re-applies. `change` returning `None` means
    /// "nothing to do" (an idempotent repeat): nothing is written.
    /// Returns the room as it now is, and whether this call changed it.
    pub async fn update<F>(&self, clinic: &str, room_id: &str, change: F) -> Result<Option<(Room, bool)>, StoreError>
    where
        F: Fn(&Room) -> Option<(Room, Vec<DomainEvent>)>,
    {
        update_versioned(&self.ddb, &self.table, key(room_pk(clinic, room_id), "ROOM"), "room", unindexed, change).await
    }

    /// [`Self::update`], with `also` written in the same transaction when the
    /// change applies (a consent history line).
    pub async fn update_also<F>(
        &self,
        clinic: &str,
        room_id: &str,
        also: &[TransactWriteItem],
        change: F,
    ) -> Result<Option<(Room, bool)>, StoreError>
    where
        F: Fn(&Room) -> Option<(Room, Vec<DomainEvent>)>,
    {
        let key = key(room_pk(clinic, room_id), "ROOM");
        let Some(known) = get_versioned::<Room>(&self.ddb, &self.table, key.clone()).await? else { return Ok(None) };
        let (room, _, changed) =
            update_versioned_with(&self.ddb, &self.table, key, "room", unindexed, known, change, also).await?;
        Ok(Some((room, changed)))
    }

    /// A record under the room (image, issue report) with its event, in one
    /// transaction.
    pub(crate) async fn put_child(
        &self,
        room: &Room,
        sk: &str,
        mut attrs: Item,
        event: &DomainEvent,
    ) -> Result<(), StoreError> {
        attrs.extend(key(room_pk(&room.clinic_id, &room.room_id), sk));
        let mut items = vec![put(&self.table, attrs, Some("attribute_not_exists(pk)"))?];
        items.extend(outbox(&self.table, std::slice::from_ref(event))?);
        self.ddb.transact_write_items().set_transact_items(Some(items)).send().await.map_err(unavailable)?;
        Ok(())
    }

    /// The room's records whose sort key starts with `prefix`.
    pub(crate) async fn children(&self, room: &Room, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(room_pk(&room.clinic_id, &room.room_id)))
                .expression_attribute_values(":prefix", s(prefix))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// A record under the room, written only if absent. `Ok(false)`: it exists.
    pub(crate) async fn put_child_if_absent(&self, room: &Room, sk: &str, mut attrs: Item) -> Result<bool, StoreError> {
        attrs.extend(key(room_pk(&room.clinic_id, &room.room_id), sk));
        put_if_absent(&self.ddb, &self.table, attrs).await
    }

    pub(crate) async fn child(&self, room: &Room, sk: &str) -> Result<Option<Item>, StoreError> {
        let got = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(room_pk(&room.clinic_id, &room.room_id), sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(got.item)
    }

    pub(crate) async fn delete_child(&self, room: &Room, sk: &str) -> Result<(), StoreError> {
        self.ddb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(room_pk(&room.clinic_id, &room.room_id), sk)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The user's rooms, newest `scheduledStart` first, from the membership
    /// index (one query and one batch read a page; no scans). The cursor is
    /// opaque and only valid for the same user.
    pub async fn history(
        &self,
        clinic: &str,
        user: &str,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<HistoryPage, StoreError> {
        let partition = format!("USER#{clinic}#{user}");
        let start = cursor.map(|c| decode_cursor(c, &partition, clinic)).transpose()?;
        let page = self
            .ddb
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", s(&partition))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        let members = page.items.unwrap_or_default();
        let keys: Vec<Item> = members.iter().filter_map(|m| string(m, "pk")).map(|pk| key(pk, "ROOM")).collect();
        let mut by_pk: HashMap<String, Room> = HashMap::new();
        let mut pending = keys.clone();
        let mut rounds = 0;
        while !pending.is_empty() && rounds < 10 {
            rounds += 1;
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending.clone()))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let got =
                self.ddb.batch_get_item().request_items(&self.table, request).send().await.map_err(unavailable)?;
            for item in got.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                let pk = string(&item, "pk").unwrap_or_default();
                by_pk.insert(pk, versioned_from::<Room>(item)?.0);
            }
            pending = got.unprocessed_keys.unwrap_or_default().remove(&self.table).map(|k| k.keys).unwrap_or_default();
        }
        let rooms = keys.iter().filter_map(|k| string(k, "pk")).filter_map(|pk| by_pk.remove(&pk)).collect();
        let next_cursor = page.last_evaluated_key.map(|k| encode_cursor(&k));
        Ok(HistoryPage { rooms, next_cursor })
    }
}

fn encode_cursor(key: &Item) -> String {
    let map: serde_json::Map<String, serde_json::Value> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), serde_json::Value::String(s.clone()))))
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::Value::Object(map).to_string())
}

/// A cursor is accepted only if it is one this store made for this user.
pub fn decode_cursor(cursor: &str, partition: &str, clinic: &str) -> Result<Item, StoreError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let map: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    let ok = map.len() == 4
        && map.get("gsi1pk").map(String::as_str) == Some(partition)
        && map.get("pk").is_some_and(|pk| pk.starts_with(&format!("ROOM#{clinic}#")))
        && map.get("sk").is_some_and(|sk| sk.starts_with("MEMBER#"))
        && map.contains_key("gsi1sk");
    if !ok {
        return Err(StoreError::BadCursor);
    }
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}
