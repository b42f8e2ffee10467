//! Recordings (API.md "Recordings and dial-in"). Here, consent: a listed
//! participant's yes or no for themself, kept on the room (which decides
//! whether it may be recorded, `Room::may_record`) and, in the same
//! transaction, as a line of their consent history (category
//! `recording`, source `api`). `jibri`: Jibri's presigned upload, the
//! object checked before the recording is `ready`, and the room's
//! recordings with short download URLs; `egress`: OpenVidu's, through
//! LiveKit egress; `access`: legal hold and deletion; `retention`: the
//! sweep of expired recordings; `storage`: the bucket.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_domain::caller::Caller;
use vcare_domain::recording::{ConsentRefusal, consent_entry};
use vcare_domain::room::{Room, Standing};
use vcare_runtime::{ConfigError, Env};
use vcare_store::ConsentStore;

use crate::{RoomError, Rooms};

mod access;
mod egress;
mod jibri;
mod parts;
mod retention;
mod storage;

pub use egress::{EgressChecked, FIRST_CHECK, RECHECK};
pub use parts::{PARTS_FOR, PartUpload};
pub use retention::Expired;
pub use storage::{RecordingStorage, RecordingUpload};

pub struct Recordings {
    pub care: Rooms,
    consent: ConsentStore,
}

/// A participant's answer as it stands after their request.
pub struct Consented {
    pub room: Room,
    pub user_id: String,
    pub granted: bool,
    pub at: DateTime<Utc>,
}

impl Consented {
    /// The answer, and whether the room may now be recorded (no other
    /// participant's answer is shown).
    pub fn view(&self) -> Value {
        json!({"roomId": self.room.room_id, "userId": self.user_id, "recording": self.granted,
               "at": self.at, "recordingAllowed": self.room.may_record()})
    }
}

impl Recordings {
    /// `TABLE_NAME` and the rooms' settings, `CONSENT_TABLE_NAME`.
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        let care = Rooms::from_env(env, sdk)?;
        let consent =
            ConsentStore::new(care.store.client().clone(), care.store.table(), env.required("CONSENT_TABLE_NAME")?);
        Ok(Self { care, consent })
    }

    /// With the recordings' storage.
    pub fn with_storage(env: &Env, sdk: &SdkConfig) -> Result<(Self, RecordingStorage), ConfigError> {
        Ok((Self::from_env(env, sdk)?, RecordingStorage::from_env(env, sdk)?))
    }

    /// The caller's answer for themself. A repeat of the answer standing
    /// changes nothing and adds no history line; anyone not listed is 404;
    /// an ended or cancelled room 409. A "no" stops an OpenVidu room's
    /// egress at once (asked again by a repeat, if the stop failed).
    pub async fn consent(
        &self,
        caller: &Caller,
        room_id: &str,
        granted: bool,
        openvidu: Option<&crate::video::OpenVidu>,
    ) -> Result<Consented, RoomError> {
        let (room, standing) = self.care.room_for(caller, room_id).await?;
        if !matches!(standing, Standing::Participant(_)) {
            return Err(RoomError::NoSuchRoom);
        }
        let user = caller.user_id.as_str();
        let now = self.care.now();
        let refused = |r| match r {
            ConsentRefusal::NotListed => RoomError::NoSuchRoom,
            ConsentRefusal::Closed => {
                RoomError::Conflict(format!("the room is {}: its recording is settled", room.status.as_str()))
            }
        };
        let room = match room.with_recording_consent(user, granted, now).map_err(refused)? {
            None => room,
            Some(_) => {
                let line = self.consent.history_line(&room.clinic_id, user, &consent_entry(user, granted, now))?;
                let (room, _) = self
                    .care
                    .store
                    .update_also(&room.clinic_id, &room.room_id, &[line], |current| {
                        current.with_recording_consent(user, granted, now).ok()?.map(|next| (next, vec![]))
                    })
                    .await?
                    .ok_or(RoomError::NoSuchRoom)?;
                room
            }
        };
        if !granted && room.provider == vcare_domain::video::ProviderKind::Openvidu {
            // An egress still starting is stopped by its start, which
            // looks at the consent again once LiveKit answers.
            match self.stop_recording_of(&room, openvidu).await {
                Ok(Some(stopped)) => {
                    tracing::info!(recording_id = %stopped.recording_id, "a withdrawn consent stopped the room's egress");
                }
                Ok(None) | Err(RoomError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let standing = room.recording_consent(user).ok_or(RoomError::NoSuchParticipant)?;
        Ok(Consented { user_id: user.to_owned(), granted: standing.granted, at: standing.at, room })
    }
}
