//! Typed methods for what is kept under a room (`vcare_domain::room_records`):
//! issues, images, the Jitsi reservation, sealed contacts, a pending end of
//! meeting. Their sort keys are spelled here and nowhere else.

use serde::Serialize;
use serde::de::DeserializeOwned;
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

    /// Keeps a failed end of meeting for a retry; the first failure stays.
    pub async fn keep_end_pending(&self, room: &Room, pending: &EndPending) -> Result<bool, StoreError> {
        self.put_child_if_absent(room, END_PENDING, attrs(pending)?).await
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
