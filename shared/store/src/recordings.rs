//! A room's recordings as stored (issue 20).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | a recording (versioned) | `ROOM#<clinic>#<roomId>` | `REC#<recordingId>` |
//! | its pointer, for calls by id | `RECORDING#<recordingId>` | `RECORDING` (`clinicId`, `roomId`) |
//! | the room's egress lock, while one is starting or recording | `ROOM#<clinic>#<roomId>` | `EGRESS` (`recordingId`) |

use aws_sdk_dynamodb::types::TransactWriteItem;
use vcare_domain::events::DomainEvent;
use vcare_domain::recordings::Recording;
use vcare_domain::room::Room;

use crate::items::{
    Item, get_versioned, key, put, string, unindexed, update_versioned_with, versioned_from, versioned_item,
};
use crate::{RoomStore, StoreError, unavailable};

fn recording_key(clinic: &str, room_id: &str, recording_id: &str) -> Item {
    key(format!("ROOM#{clinic}#{room_id}"), &format!("REC#{recording_id}"))
}

fn pointer_key(recording_id: &str) -> Item {
    key(format!("RECORDING#{recording_id}"), "RECORDING")
}

fn egress_lock_key(clinic: &str, room_id: &str) -> Item {
    key(format!("ROOM#{clinic}#{room_id}"), "EGRESS")
}

impl RoomStore {
    /// A new recording of `room` and its pointer, each only if absent,
    /// with `also` (a due entry) in the same transaction.
    pub async fn add_recording(
        &self,
        room: &Room,
        recording: &Recording,
        also: &[TransactWriteItem],
    ) -> Result<(), StoreError> {
        let items = self.recording_items(room, recording, also)?;
        self.client().transact_write_items().set_transact_items(Some(items)).send().await.map_err(unavailable)?;
        Ok(())
    }

    /// The recording and its pointer (indexes 0 and 1), each only if
    /// absent, then `also`.
    fn recording_items(
        &self,
        room: &Room,
        recording: &Recording,
        also: &[TransactWriteItem],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let item = versioned_item(
            recording,
            recording_key(&room.clinic_id, &room.room_id, &recording.recording_id),
            "recording",
            1,
        )?;
        let mut pointer = pointer_key(&recording.recording_id);
        pointer.insert("clinicId".into(), crate::s(&room.clinic_id));
        pointer.insert("roomId".into(), crate::s(&room.room_id));
        let mut items = vec![
            put(self.table(), item, Some("attribute_not_exists(pk)"))?,
            put(self.table(), pointer, Some("attribute_not_exists(pk)"))?,
        ];
        items.extend(also.iter().cloned());
        Ok(items)
    }

    /// A new egress recording of `room` with `also`, only if no other
    /// egress of the room holds its lock (two starts at once record once):
    /// `false` when one does. The lock is released by
    /// [`Self::egress_unlock`] in the transaction that settles it.
    pub async fn add_egress_recording(
        &self,
        room: &Room,
        recording: &Recording,
        also: &[TransactWriteItem],
    ) -> Result<bool, StoreError> {
        let mut lock = egress_lock_key(&room.clinic_id, &room.room_id);
        lock.insert("recordingId".into(), crate::s(&recording.recording_id));
        let mut more = vec![put(self.table(), lock, Some("attribute_not_exists(pk)"))?];
        more.extend(also.iter().cloned());
        let items = self.recording_items(room, recording, &more)?;
        match self.client().transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) if crate::items::condition_failed_at(&e, 2) == Some(true) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Releases the room's egress lock (in the settling transaction: no condition).
    pub fn egress_unlock(&self, recording: &Recording) -> Result<TransactWriteItem, StoreError> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(self.table())
            .set_key(Some(egress_lock_key(&recording.clinic_id, &recording.room_id)))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// A recording by its id alone (Jibri's complete names only the id).
    pub async fn recording_by_id(&self, recording_id: &str) -> Result<Option<Recording>, StoreError> {
        Ok(self.recording_by_id_versioned(recording_id).await?.map(|(r, _)| r))
    }

    /// [`Self::recording_by_id`] with its version, for an update that
    /// saves the read.
    pub async fn recording_by_id_versioned(&self, recording_id: &str) -> Result<Option<(Recording, u64)>, StoreError> {
        let Some(pointer) = crate::items::get_item(self.client(), self.table(), pointer_key(recording_id)).await?
        else {
            return Ok(None);
        };
        let (Some(clinic), Some(room_id)) = (string(&pointer, "clinicId"), string(&pointer, "roomId")) else {
            return Err(StoreError::Corrupt("recording pointer".into()));
        };
        get_versioned::<Recording>(self.client(), self.table(), recording_key(&clinic, &room_id, recording_id)).await
    }

    /// Changes a recording by `change` (with its events) unless someone
    /// changed it in between; `None` from `change`: nothing to do.
    pub async fn update_recording<F>(
        &self,
        recording: &Recording,
        change: F,
    ) -> Result<Option<(Recording, bool)>, StoreError>
    where
        F: Fn(&Recording) -> Option<(Recording, Vec<DomainEvent>)>,
    {
        self.update_recording_also(recording, None, &[], change).await
    }

    /// [`Self::update_recording`], from `version` when the caller has just
    /// read it (else it is read now), with `also` (due entries: no
    /// conditions) in the same transaction when the change applies.
    pub async fn update_recording_also<F>(
        &self,
        recording: &Recording,
        version: Option<u64>,
        also: &[TransactWriteItem],
        change: F,
    ) -> Result<Option<(Recording, bool)>, StoreError>
    where
        F: Fn(&Recording) -> Option<(Recording, Vec<DomainEvent>)>,
    {
        let key = recording_key(&recording.clinic_id, &recording.room_id, &recording.recording_id);
        let known = match version {
            Some(v) => (recording.clone(), v),
            None => match get_versioned::<Recording>(self.client(), self.table(), key.clone()).await? {
                Some(known) => known,
                None => return Ok(None),
            },
        };
        let (value, _, changed) =
            update_versioned_with(self.client(), self.table(), key, "recording", unindexed, known, change, also)
                .await?;
        Ok(Some((value, changed)))
    }

    /// The room's recordings, oldest first.
    pub async fn recordings(&self, room: &Room) -> Result<Vec<Recording>, StoreError> {
        Ok(self.recordings_versioned(room).await?.into_iter().map(|(r, _)| r).collect())
    }

    /// [`Self::recordings`], each with its version.
    pub async fn recordings_versioned(&self, room: &Room) -> Result<Vec<(Recording, u64)>, StoreError> {
        let mut out: Vec<(Recording, u64)> = self
            .children(room, "REC#")
            .await?
            .into_iter()
            .map(versioned_from::<Recording>)
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|(r, _)| r.created_at);
        Ok(out)
    }
}
