//! Join tokens for a room's participants, from the room's provider: what
//! `token-issue` answers, what join links and reminders carry.

use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_domain::room::{Participant, Room};
use vcare_domain::video::ProviderKind;
use vcare_runtime::{Env, Error};

use crate::video::{Minted, Needs, Providers};
use crate::{RoomError, Rooms, RoomsConfig};

/// Where login-token public keys go in the keys bucket (Prosody's
/// `asap_key_server` points here).
pub const LOGIN_KEYS_PREFIX: &str = "login/";

pub struct TokenIssuer {
    pub care: Rooms,
    pub providers: Providers,
}

impl TokenIssuer {
    pub async fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, Error> {
        Self::with(env, sdk, Needs { tokens: true, end: false }).await
    }

    /// With more of the providers than tokens (the scheduler also ends
    /// meetings).
    pub async fn with(env: &Env, sdk: &SdkConfig, needs: Needs) -> Result<Self, Error> {
        let care = Rooms::new(RoomsConfig::from_env(env)?, sdk);
        let providers = Providers::from_env(env, sdk, &care.config, Needs { tokens: true, ..needs }).await?;
        Ok(Self { care, providers })
    }

    /// A token for `participant` of `room`, valid for the room's join window.
    pub async fn issue(&self, room: &Room, participant: &Participant, now: DateTime<Utc>) -> Result<Minted, Error> {
        self.providers.of(room)?.mint(room, participant, now).await
    }

    /// The URL a link or reminder opens: Jitsi's meeting with the token,
    /// or OpenVidu's web client (`OPENVIDU_MEET_URL`) with it.
    /// Never for someone an OpenVidu room's waiting room holds back: only
    /// vcare stands between them and the room (on Jitsi, Prosody's lobby
    /// holds such a token's owner).
    pub async fn join_url(&self, room: &Room, participant: &Participant, now: DateTime<Utc>) -> Result<String, Error> {
        if room.provider == ProviderKind::Openvidu && room.holds_back(participant) {
            return Err("a waiting patient's OpenVidu token waits for admission".into());
        }
        self.issue(room, participant, now)
            .await?
            .join_url
            .ok_or_else(|| format!("{} rooms have no join page configured", room.provider.as_str()).into())
    }

    /// Makes the provider's room before its first token (LiveKit's
    /// CreateRoom with the room's limits), once: the room remembers it, so
    /// later tokens cost only their read. A provider that is down is a
    /// 503 for the caller, not a token for a room that is not there.
    pub async fn ensure_prepared(&self, room: &Room) -> Result<(), RoomError> {
        let provider = self.providers.of(room).map_err(|_| RoomError::ProviderUnavailable)?;
        if room.prepared || !provider.needs_prepare() {
            return Ok(());
        }
        if let Err(why) = provider.prepare(room).await {
            tracing::error!(room_id = %room.room_id, error = %why, "the provider's room could not be made");
            return Err(RoomError::ProviderUnavailable);
        }
        self.care
            .store
            .update(&room.clinic_id, &room.room_id, |current| {
                (!current.prepared).then(|| {
                    let mut next = current.clone();
                    next.prepared = true;
                    (next, vec![])
                })
            })
            .await?;
        Ok(())
    }
}
