//! Join tokens for a room's participants, from the room's provider: what
//! `token-issue` answers, what join links and reminders carry.

use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_domain::room::{Participant, Room};
use vcare_domain::video::ProviderKind;
use vcare_runtime::{Env, Error};

use vcare_domain::audit::Outcome;
use vcare_domain::events::DomainEvent;

use crate::audit::{Access, Audit};
use crate::video::{Minted, Needs, Providers};
use crate::{RoomError, Rooms, RoomsConfig};

/// Where login-token public keys go in the keys bucket (Prosody's
/// `asap_key_server` points here).
pub const LOGIN_KEYS_PREFIX: &str = "login/";

/// On whose behalf vcare mints a token no caller asked it for.
#[derive(Debug, Clone)]
pub struct Minter {
    /// The join link's owner, or vcare's reminders.
    pub actor_id: String,
    pub actor_roles: Vec<String>,
    /// `token.issue.link`, `token.issue.reminder`.
    pub action: &'static str,
    pub request_id: String,
    pub source_ip: String,
    /// The join link's maker, where the token comes from a link.
    pub granted_by: Option<String>,
}

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
    /// or OpenVidu's web client (`OPENVIDU_MEET_URL`) with it. `None` for
    /// someone an OpenVidu room's waiting room holds back (only vcare
    /// stands between them and the room; on Jitsi, Prosody's lobby holds
    /// such a token's owner), and where the provider has no join page.
    ///
    /// The token is vcare's own doing, not a caller's request, so it is
    /// recorded here, before the URL is handed on: `by` is whom or what it
    /// was minted for, and the record carries `virtual_care.token.issued`.
    pub async fn join_url(
        &self,
        room: &Room,
        participant: &Participant,
        now: DateTime<Utc>,
        audit: &Audit,
        by: Minter,
    ) -> Result<Option<String>, Error> {
        // No token for who waits on OpenVidu, nor where there is no join page.
        if room.provider == ProviderKind::Openvidu && room.holds_back(participant) {
            return Ok(None);
        }
        let minted = self.issue(room, participant, now).await?;
        let Some(url) = minted.join_url else { return Ok(None) };
        let issued = DomainEvent::token_issued(room, participant, minted.moderator, minted.expires, now);
        let access = Access {
            clinic_id: room.clinic_id.clone(),
            actor_id: by.actor_id,
            actor_roles: by.actor_roles,
            action: by.action.into(),
            subject_type: "room".into(),
            subject_id: room.room_id.clone(),
            outcome: Outcome::Allowed,
            request_id: by.request_id,
            source_ip: by.source_ip,
            granted_by: by.granted_by,
        };
        audit.record(access, &[issued]).await?;
        Ok(Some(url))
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
