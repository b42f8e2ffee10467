//! Typed methods for what is kept under a room (`vcare_domain::room_records`):
//! issues, images, the Jitsi reservation, sealed contacts, a pending end of
//! meeting. Their sort keys are spelled here and nowhere else.

use serde::Serialize;
use serde::de::DeserializeOwned;
use vcare_domain::due::Due;
use vcare_domain::events::DomainEvent;
use vcare_domain::room::Room;
use vcare_domain::room_records::{EndPending, ImageRecord, IssueRecord, JoinLink, ReservationRecord, SealedContact};

use crate::items::Item;
use crate::{RoomStore, StoreError};

const RESERVATION: &str = "RESERVATION";
const END_PENDING: &str = "JITSI_END";
const IMAGES: &str = "IMAGE#";

fn issue_key(issue_id: &str) -> String {
    format!("ISSUE#{issue_id}")
}

fn image_key(image_id: &str) -> String {
    format!("{IMAGES}{image_id}")
}

fn contact_key(user_id: &str) -> String {
    format!("CONTACT#{user_id}")
}

fn attrs<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn value<T: DeserializeOwned>(mut item: Item) -> Result<T, StoreError> {
    item.remove("pk");
    item.remove("sk");
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl RoomStore {
    /// Keeps a reported issue with its event.
    pub async fn add_issue(&self, room: &Room, issue: &IssueRecord, event: &DomainEvent) -> Result<(), StoreError> {
        self.put_child(room, &issue_key(&issue.issue_id), attrs(issue)?, event).await
    }

    /// Keeps a shared image with its event.
    pub async fn add_image(&self, room: &Room, image: &ImageRecord, event: &DomainEvent) -> Result<(), StoreError> {
        self.put_child(room, &image_key(&image.image_id), attrs(image)?, event).await
    }

    /// The room's images, in key order.
    pub async fn images(&self, room: &Room) -> Result<Vec<ImageRecord>, StoreError> {
        self.children(room, IMAGES).await?.into_iter().map(value).collect()
    }

    /// Keeps Jitsi's reservation; `false` when the room has one already.
    pub async fn reserve(&self, room: &Room, reservation: &ReservationRecord) -> Result<bool, StoreError> {
        self.put_child_if_absent(room, RESERVATION, attrs(reservation)?).await
    }

    pub async fn reservation(&self, room: &Room) -> Result<Option<ReservationRecord>, StoreError> {
        self.child(room, RESERVATION).await?.map(value).transpose()
    }

    pub async fn release_reservation(&self, room: &Room) -> Result<(), StoreError> {
        self.delete_child(room, RESERVATION).await
    }

    /// Keeps a participant's sealed contact; the first one stays.
    pub async fn keep_contact(&self, room: &Room, user_id: &str, contact: &SealedContact) -> Result<bool, StoreError> {
        self.put_child_if_absent(room, &contact_key(user_id), attrs(contact)?).await
    }

    pub async fn contact(&self, room: &Room, user_id: &str) -> Result<Option<SealedContact>, StoreError> {
        self.child(room, &contact_key(user_id)).await?.map(value).transpose()
    }

    /// Every participant's sealed contact, as stored.
    pub async fn contacts(&self, room: &Room) -> Result<Vec<SealedContact>, StoreError> {
        self.children(room, "CONTACT#").await?.into_iter().map(value).collect()
    }

    /// Keeps a failed end of meeting with the due entry that retries it
    /// (`retry`), in one transaction: a pending end is never without its
    /// retry. `done` is the entry this attempt came from, removed with it.
    pub async fn keep_end_pending(
        &self,
        room: &Room,
        pending: &EndPending,
        retry: Option<&Due>,
        done: Option<&Due>,
    ) -> Result<(), StoreError> {
        let due = crate::DueStore::new(self.ddb.clone(), self.table.clone());
        let mut item = attrs(pending)?;
        item.extend(crate::items::key(crate::rooms::room_pk(&room.clinic_id, &room.room_id), END_PENDING));
        let mut items = vec![crate::items::put(&self.table, item, None)?];
        items.extend(retry.map(|d| due.put(d)).transpose()?);
        items.extend(done.filter(|d| Some(*d) != retry).map(|d| due.delete(d)).transpose()?);
        self.ddb.transact_write_items().set_transact_items(Some(items)).send().await.map_err(crate::unavailable)?;
        Ok(())
    }

    pub async fn end_pending(&self, room: &Room) -> Result<Option<EndPending>, StoreError> {
        self.child(room, END_PENDING).await?.map(value).transpose()
    }

    /// The meeting ended after all: the pending record and its entry go.
    pub async fn end_done(&self, room: &Room, done: &Due) -> Result<(), StoreError> {
        let due = crate::DueStore::new(self.ddb.clone(), self.table.clone());
        let key = crate::items::key(crate::rooms::room_pk(&room.clinic_id, &room.room_id), END_PENDING);
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let items =
            vec![aws_sdk_dynamodb::types::TransactWriteItem::builder().delete(delete).build(), due.delete(done)?];
        self.ddb.transact_write_items().set_transact_items(Some(items)).send().await.map_err(crate::unavailable)?;
        Ok(())
    }
}

fn link_key(code: &str) -> Item {
    crate::items::key(format!("LINK#{code}"), "LINK")
}

impl RoomStore {
    /// Keeps a join link (the same link again is the same item); it
    /// expires a day after the link does.
    pub async fn keep_link(&self, link: &JoinLink) -> Result<(), StoreError> {
        let mut item = attrs(link)?;
        item.extend(link_key(&link.code));
        item.insert("kind".into(), crate::s("join-link"));
        let ttl = link.valid_until.timestamp() + 86_400;
        item.insert("expiresAt".into(), aws_sdk_dynamodb::types::AttributeValue::N(ttl.to_string()));
        self.ddb.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(crate::unavailable)?;
        Ok(())
    }

    pub async fn link(&self, code: &str) -> Result<Option<JoinLink>, StoreError> {
        let Some(mut item) = crate::items::get_item(&self.ddb, &self.table, link_key(code)).await? else {
            return Ok(None);
        };
        item.remove("kind");
        item.remove("expiresAt");
        value(item).map(Some)
    }
}
