//! The video-provider seam: what a provider must do for vcare — mint a
//! participant's token, prepare a room before its first token, end it,
//! say who is still in it, and report its health — and the providers a
//! deployment has (Jitsi always; OpenVidu when `OPENVIDU_URL` is set).
//! Everything else (rooms, join window, roles, session rules, events,
//! history) is one code path whatever the provider. Each provider's
//! webhooks arrive on its own route (`jitsi-events`, `openvidu-events`),
//! verified there by its own rule, and go through the same session rules.

mod jitsi;
mod openvidu;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_domain::due::{Due, DueKind, end_retry_at};
use vcare_domain::room::{JoinPolicy, Participant, Room};
use vcare_domain::room_records::EndPending;
use vcare_domain::video::ProviderKind;
use vcare_runtime::{Env, Error};
use vcare_store::RoomStore;

pub use jitsi::Jitsi;
pub use openvidu::OpenVidu;

use crate::{RoomError, RoomsConfig};

/// A provider's answer, boxed so that providers sit behind `dyn`.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A participant's signed token and where to use it.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    /// Jitsi: the meeting's URL with the token.
    pub join_url: Option<String>,
    /// OpenVidu: the LiveKit server's wss URL the client connects to.
    pub server_url: Option<String>,
    pub not_before: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub moderator: bool,
}

/// Who is in a room, as the provider sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occupancy {
    /// The provider cannot say (Jitsi's HTTP API has no such call).
    Unknown,
    /// The provider has no such room (finished, or never joined).
    Gone,
    Present(usize),
}

/// `GET /v1/virtual-care/providers/status`'s `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderState {
    Up { latency_ms: u64 },
    Down { latency_ms: u64 },
    Unconfigured,
}

/// The calls a provider makes to its server carry tokens issued by the
/// wall clock (what the server checks them against), so only `mint` takes
/// a business `now`.
pub trait VideoProvider: Send + Sync {
    fn kind(&self) -> ProviderKind;
    /// A token for `participant` of `room`, valid for the room's join window.
    fn mint<'a>(
        &'a self,
        room: &'a Room,
        participant: &'a Participant,
        now: DateTime<Utc>,
    ) -> Pending<'a, Result<Minted, Error>>;
    /// Makes the room ready for its first participant (LiveKit: CreateRoom
    /// with its limits). Done once per room, before its first token.
    fn prepare<'a>(&'a self, room: &'a Room) -> Pending<'a, Result<(), String>>;
    /// Whether `prepare` does anything (Jitsi's rooms need nothing).
    fn needs_prepare(&self) -> bool;
    /// Ends the meeting and disconnects everyone. A room already gone is done.
    fn end<'a>(&'a self, room: &'a Room) -> Pending<'a, Result<(), String>>;
    fn occupancy<'a>(&'a self, room: &'a Room) -> Pending<'a, Result<Occupancy, String>>;
    fn health(&self) -> Pending<'_, ProviderState>;
}

/// What a function needs of its providers, so that each opens only the
/// secrets and keys it uses (none of them: only health probes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Participant tokens (Jitsi's signing key or app secret).
    pub tokens: bool,
    /// Ending meetings (Jitsi's system key for mod_muc_end_meeting).
    pub end: bool,
}

/// The deployment's providers.
#[derive(Clone)]
pub struct Providers {
    pub jitsi: Arc<Jitsi>,
    pub openvidu: Option<Arc<OpenVidu>>,
}

impl Providers {
    pub async fn from_env(env: &Env, sdk: &SdkConfig, config: &RoomsConfig, needs: Needs) -> Result<Self, Error> {
        // Only Jitsi's secret is opened here; OpenVidu's on its first call
        // (a cold start pays for one provider's KMS call, not two).
        let jitsi = Jitsi::from_env(env, sdk, config, needs).await?;
        let openvidu = match &config.openvidu {
            None => None,
            Some(settings) => {
                let calls = needs.tokens || needs.end;
                Some(OpenVidu::from_env(env, sdk, settings.clone(), config.join, calls)?)
            }
        };
        Ok(Self { jitsi: Arc::new(jitsi), openvidu: openvidu.map(Arc::new) })
    }

    /// The provider `kind`, if the deployment has it.
    pub fn get(&self, kind: ProviderKind) -> Option<&dyn VideoProvider> {
        match kind {
            ProviderKind::Jitsi => Some(self.jitsi.as_ref()),
            ProviderKind::Openvidu => self.openvidu.as_deref().map(|o| o as &dyn VideoProvider),
        }
    }

    /// The provider of `room`. A room whose provider the deployment no
    /// longer has cannot be served: said as such, not panicked.
    pub fn of(&self, room: &Room) -> Result<&dyn VideoProvider, Error> {
        self.get(room.provider)
            .ok_or_else(|| format!("the room's provider {} is not configured", room.provider.as_str()).into())
    }
}

/// The LiveKit credentials OpenVidu's webhooks are verified with, when the
/// deployment has OpenVidu (`OPENVIDU_API_SECRET_CIPHERTEXT`, decrypted once).
pub async fn webhook_credentials(
    env: &Env,
    sdk: &SdkConfig,
    config: &RoomsConfig,
) -> Result<Option<vcare_livekit::Credentials>, Error> {
    let Some(settings) = &config.openvidu else { return Ok(None) };
    let ciphertext = env.required("OPENVIDU_API_SECRET_CIPHERTEXT")?;
    let kms = aws_sdk_kms::Client::new(sdk);
    Ok(Some(vcare_livekit::Credentials::decrypt(&kms, settings.api_key.clone(), &ciphertext).await?))
}

/// What ending a meeting at its provider came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Ended,
    /// Failed; kept with a retry in the due index.
    Pending,
    /// Failed [`vcare_domain::due::END_ATTEMPTS`] times: kept for an operator.
    Abandoned,
}

impl Providers {
    /// Ends `room`'s meeting at its provider. A failure is kept under the
    /// room with its retry (`DueKind::EndRetry`), in one transaction;
    /// `from` is the retry entry this attempt is, if it is one.
    pub async fn end_meeting(
        &self,
        store: &RoomStore,
        room: &Room,
        now: DateTime<Utc>,
        from: Option<&Due>,
    ) -> Result<Ended, RoomError> {
        let result = match self.of(room) {
            Ok(provider) => provider.end(room).await,
            Err(e) => Err(e.to_string()),
        };
        let why = match result {
            Ok(()) => {
                if let Some(from) = from {
                    store.end_done(room, from).await?;
                }
                return Ok(Ended::Ended);
            }
            Err(why) => why,
        };
        let attempts = match from {
            Some(_) => store.end_pending(room).await?.map_or(1, |p| p.attempts) + 1,
            None => 1,
        };
        let retry = end_retry_at(attempts, now).map(|at| Due {
            at,
            kind: DueKind::EndRetry,
            clinic: room.clinic_id.clone(),
            id: room.room_id.clone(),
        });
        let pending = EndPending { error: why.clone(), at: now, attempts };
        store.keep_end_pending(room, &pending, retry.as_ref(), from).await?;
        let provider = room.provider.as_str();
        if retry.is_some() {
            tracing::warn!(room_id = %room.room_id, provider, attempts, error = %why, "ending the meeting failed; it will be retried");
            Ok(Ended::Pending)
        } else {
            tracing::error!(room_id = %room.room_id, provider, attempts, error = %why, "ending the meeting failed every time; left for an operator");
            vcare_runtime::metrics::count("ProviderEndsAbandoned", &[("provider", provider)]);
            Ok(Ended::Abandoned)
        }
    }
}

/// The due entry that settles an OpenVidu room whose end never came
/// (`room_finished` lost): when its join window closes. Jitsi rooms need
/// none (event_sync's room-destroyed is retried by Prosody, and Jitsi's
/// HTTP API cannot say who is in a room).
pub fn room_check(room: &Room, policy: &JoinPolicy) -> Option<Due> {
    (room.provider == ProviderKind::Openvidu).then(|| Due {
        at: policy.closes(room),
        kind: DueKind::RoomCheck,
        clinic: room.clinic_id.clone(),
        id: room.room_id.clone(),
    })
}
