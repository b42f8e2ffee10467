//! OpenVidu 3 as a provider, through LiveKit's API (`vcare_livekit`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_domain::room::{JoinPolicy, Participant, Room};
use vcare_domain::video::ProviderKind;
use vcare_domain::video::livekit::participant_claims;
use vcare_livekit::{Credentials, Health, RoomService, RoomSettings};
use vcare_runtime::http::LazyClient;
use vcare_runtime::{Env, Error};

use super::{Minted, Occupancy, Pending, ProviderState, VideoProvider};
use crate::OpenViduSettings;

pub struct OpenVidu {
    pub settings: OpenViduSettings,
    /// What calling OpenVidu needs: absent when the function only probes
    /// (the status route opens no secret).
    calls: Option<Calls>,
    http: LazyClient,
    join: JoinPolicy,
}

/// The API secret's ciphertext, opened on the first call that needs it
/// (once per container), with the RoomService client made from it. Not at
/// cold start: a container that serves only Jitsi rooms, or only warm
/// tokens for prepared rooms after its first, never waits for it.
struct Calls {
    kms: aws_sdk_kms::Client,
    ciphertext: String,
    attempts: u32,
    backoff: Duration,
    opened: tokio::sync::OnceCell<(Arc<Credentials>, RoomService)>,
}

impl OpenVidu {
    /// With `calls`, `OPENVIDU_API_SECRET_CIPHERTEXT` (required now,
    /// decrypted on first use) and the RoomService client's
    /// `OPENVIDU_ATTEMPTS` (3) and `OPENVIDU_BACKOFF_MS` (200), each call
    /// with a 3-second timeout. Nothing here waits on the network.
    pub fn from_env(
        env: &Env,
        sdk: &SdkConfig,
        settings: OpenViduSettings,
        join: JoinPolicy,
        calls: bool,
    ) -> Result<Self, Error> {
        let calls = if calls {
            Some(Calls {
                kms: aws_sdk_kms::Client::new(sdk),
                ciphertext: env.required("OPENVIDU_API_SECRET_CIPHERTEXT")?,
                attempts: env.bounded("OPENVIDU_ATTEMPTS", 3, 1, 10)?,
                backoff: Duration::from_millis(env.bounded("OPENVIDU_BACKOFF_MS", 200, 1, 10_000)?),
                opened: tokio::sync::OnceCell::new(),
            })
        } else {
            None
        };
        // Made on the first call too: a warm token never needs it.
        Ok(Self { settings, calls, http: LazyClient::new(), join })
    }

    /// The credentials and the RoomService client, the secret opened now if
    /// this is the container's first call (a failure is tried again next
    /// time, and names no secret).
    async fn calls(&self) -> Result<&(Arc<Credentials>, RoomService), String> {
        let calls = self.calls.as_ref().ok_or_else(|| "this function does not call OpenVidu".to_owned())?;
        calls
            .opened
            .get_or_try_init(|| async {
                let credentials = Credentials::decrypt(&calls.kms, self.settings.api_key.clone(), &calls.ciphertext)
                    .await
                    .map_err(|e| format!("the OpenVidu API secret could not be opened: {e}"))?;
                let credentials = Arc::new(credentials);
                let service = RoomService {
                    url: self.settings.url.clone(),
                    credentials: credentials.clone(),
                    http: self.http.clone(),
                    attempts: calls.attempts,
                    backoff: calls.backoff,
                };
                Ok((credentials, service))
            })
            .await
    }
}

impl OpenVidu {
    /// LiveKit's API client (its Egress calls are the recordings'), the
    /// secret opened now if this is the container's first call.
    pub async fn room_service(&self) -> Result<&RoomService, String> {
        Ok(&self.calls().await?.1)
    }
}

impl VideoProvider for OpenVidu {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openvidu
    }

    fn mint<'a>(
        &'a self,
        room: &'a Room,
        participant: &'a Participant,
        now: DateTime<Utc>,
    ) -> Pending<'a, Result<Minted, Error>> {
        Box::pin(async move {
            // LiveKit allows a minute of skew; a token is never "not yet
            // valid" when handed out.
            let not_before = self.join.opens(room).min(now);
            let expires = self.join.closes(room);
            let (credentials, _) = self.calls().await?;
            let claims = participant_claims(&credentials.api_key, room, participant, not_before, expires);
            let token = credentials.sign(&claims);
            Ok(Minted {
                join_url: self
                    .settings
                    .meet_url
                    .as_ref()
                    .map(|m| format!("{m}#url={}&token={token}", self.settings.server_url)),
                token,
                server_url: Some(self.settings.server_url.clone()),
                not_before,
                expires,
                moderator: claims["video"]["roomAdmin"] == true,
            })
        })
    }

    fn prepare<'a>(&'a self, room: &'a Room) -> Pending<'a, Result<(), String>> {
        Box::pin(async move {
            let settings = RoomSettings {
                empty_timeout_seconds: self.settings.empty_timeout_seconds,
                departure_timeout_seconds: self.settings.departure_timeout_seconds,
                max_participants: room.max_participants,
            };
            self.calls().await?.1.create_room(&room.jitsi_room, settings).await.map_err(|e| e.to_string())
        })
    }

    fn needs_prepare(&self) -> bool {
        true
    }

    fn end<'a>(&'a self, room: &'a Room) -> Pending<'a, Result<(), String>> {
        Box::pin(async move { self.calls().await?.1.delete_room(&room.jitsi_room).await.map_err(|e| e.to_string()) })
    }

    fn occupancy<'a>(&'a self, room: &'a Room) -> Pending<'a, Result<Occupancy, String>> {
        Box::pin(async move {
            match self.calls().await?.1.list_participants(&room.jitsi_room).await {
                Ok(None) => Ok(Occupancy::Gone),
                Ok(Some(p)) => Ok(Occupancy::Present(p.len())),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn health(&self) -> Pending<'_, ProviderState> {
        Box::pin(async move {
            match vcare_livekit::probe(&self.http, &self.settings.url).await {
                Health::Up { latency_ms } => ProviderState::Up { latency_ms },
                Health::Down { latency_ms } => ProviderState::Down { latency_ms },
            }
        })
    }
}
