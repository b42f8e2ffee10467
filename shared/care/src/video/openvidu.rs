//! OpenVidu 3 as a provider, through LiveKit's API (`vcare_livekit`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_domain::room::{JoinPolicy, Participant, Room};
use vcare_domain::video::ProviderKind;
use vcare_domain::video::livekit::participant_claims;
use vcare_livekit::{Credentials, Health, RoomService, RoomSettings};
use vcare_runtime::{Env, Error};

use super::{Minted, Occupancy, Pending, ProviderState, VideoProvider};
use crate::OpenViduSettings;

pub struct OpenVidu {
    pub settings: OpenViduSettings,
    pub credentials: Arc<Credentials>,
    pub service: RoomService,
    join: JoinPolicy,
}

impl OpenVidu {
    /// The API secret from `OPENVIDU_API_SECRET_CIPHERTEXT` (decrypted
    /// once); `OPENVIDU_ATTEMPTS` (3) and `OPENVIDU_BACKOFF_MS` (200) for
    /// the RoomService calls, each with a 3-second timeout.
    pub async fn from_env(
        env: &Env,
        sdk: &SdkConfig,
        settings: OpenViduSettings,
        join: JoinPolicy,
    ) -> Result<Self, Error> {
        let ciphertext = env.required("OPENVIDU_API_SECRET_CIPHERTEXT")?;
        let credentials = Arc::new(
            Credentials::decrypt(&aws_sdk_kms::Client::new(sdk), settings.api_key.clone(), &ciphertext).await?,
        );
        let service = RoomService {
            url: settings.url.clone(),
            credentials: credentials.clone(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?,
            attempts: env.bounded("OPENVIDU_ATTEMPTS", 3, 1, 10)?,
            backoff: Duration::from_millis(env.bounded("OPENVIDU_BACKOFF_MS", 200, 1, 10_000)?),
        };
        Ok(Self { settings, credentials, service, join })
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
            let claims = participant_claims(&self.credentials.api_key, room, participant, not_before, expires);
            let token = self.credentials.sign(&claims);
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
            self.service.create_room(&room.jitsi_room, settings).await.map_err(|e| e.to_string())
        })
    }

    fn needs_prepare(&self) -> bool {
        true
    }

    fn end<'a>(&'a self, room: &'a Room) -> Pending<'a, Result<(), String>> {
        Box::pin(async move { self.service.delete_room(&room.jitsi_room).await.map_err(|e| e.to_string()) })
    }

    fn occupancy<'a>(&'a self, room: &'a Room) -> Pending<'a, Result<Occupancy, String>> {
        Box::pin(async move {
            match self.service.list_participants(&room.jitsi_room).await {
                Ok(None) => Ok(Occupancy::Gone),
                Ok(Some(p)) => Ok(Occupancy::Present(p.len())),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn health(&self) -> Pending<'_, ProviderState> {
        Box::pin(async move {
            match self.service.health().await {
                Health::Up { latency_ms } => ProviderState::Up { latency_ms },
                Health::Down { latency_ms } => ProviderState::Down { latency_ms },
            }
        })
    }
}
