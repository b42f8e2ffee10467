//! Jitsi as a provider: tokens as Prosody's token plugins accept them
//! (`vcare_jitsi`), ending through mod_muc_end_meeting, health by a GET of
//! `JITSI_HEALTH_URL` (e.g. Jicofo's `/about/health` behind the proxy).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_domain::room::{JoinPolicy, Participant, Room};
use vcare_domain::video::ProviderKind;
use vcare_jitsi::{AppSecret, EndMeeting, Signer, TokenClaims, grant};
use vcare_runtime::http::LazyClient;
use vcare_runtime::{ConfigError, Env, Error};

use super::{Minted, Needs, Occupancy, Pending, ProviderState, VideoProvider};
use crate::RoomsConfig;
use crate::tokens::LOGIN_KEYS_PREFIX;

pub struct Jitsi {
    pub app_id: String,
    audience: String,
    domain: String,
    join: JoinPolicy,
    signer: Option<Signer>,
    ender: Option<EndMeeting>,
    health_url: Option<String>,
    http: LazyClient,
}

impl Jitsi {
    pub async fn from_env(env: &Env, sdk: &SdkConfig, config: &RoomsConfig, needs: Needs) -> Result<Self, Error> {
        let signer = if needs.tokens { Some(signer(env, sdk).await?) } else { None };
        let ender = if needs.end { crate::end_meeting::from_env(env, sdk, config).await? } else { None };
        Ok(Self {
            app_id: env.get("JITSI_APP_ID").unwrap_or_default().to_owned(),
            audience: env.get("JITSI_AUDIENCE").unwrap_or("jitsi").to_owned(),
            domain: config.jitsi_domain.clone(),
            join: config.join,
            signer,
            ender,
            health_url: env.get("JITSI_HEALTH_URL").map(str::to_owned),
            http: LazyClient::new(),
        })
    }

    pub fn join_url(&self, room: &Room) -> String {
        format!("https://{}/{}", self.domain, room.jitsi_room)
    }

    /// The token's claims for `participant` (what [`VideoProvider::mint`] signs).
    pub fn claims(&self, room: &Room, participant: &Participant, now: DateTime<Utc>) -> TokenClaims {
        TokenClaims {
            app_id: self.app_id.clone(),
            audience: self.audience.clone(),
            domain: self.domain.clone(),
            room: room.jitsi_room.clone(),
            user_id: participant.user_id.clone(),
            user_name: participant.display_name.clone(),
            grant: grant(room, participant),
            issued_at: now,
            not_before: self.join.opens(room),
            expires: self.join.closes(room),
        }
    }
}

/// `JITSI_SIGNING`: `hs256` (the app secret, `JITSI_APP_SECRET_CIPHERTEXT`)
/// or `kms-rs256` (`JITSI_SIGNING_KEY_ID`, `JITSI_KID`, the public key
/// published under `login/` in `JITSI_PUBLIC_KEYS_BUCKET`).
async fn signer(env: &Env, sdk: &SdkConfig) -> Result<Signer, Error> {
    env.required("JITSI_APP_ID")?;
    let kms = aws_sdk_kms::Client::new(sdk);
    Ok(match env.get("JITSI_SIGNING").unwrap_or("hs256") {
        "hs256" => {
            let ciphertext = env.required("JITSI_APP_SECRET_CIPHERTEXT")?;
            Signer::hs256(&AppSecret::decrypt(&kms, &ciphertext).await?)
        }
        "kms-rs256" => {
            let key_id = env.required("JITSI_SIGNING_KEY_ID")?;
            let kid = env.get("JITSI_KID").unwrap_or("vcare-jitsi-1").to_owned();
            let bucket = env.required("JITSI_PUBLIC_KEYS_BUCKET")?;
            let s3 = aws_sdk_s3::Client::new(sdk);
            Signer::kms_rs256_published(kms, &s3, key_id, kid, &bucket, LOGIN_KEYS_PREFIX).await?
        }
        other => {
            return Err(ConfigError::Invalid {
                name: "JITSI_SIGNING".into(),
                reason: format!("{other:?}: hs256 or kms-rs256"),
            }
            .into());
        }
    })
}

impl VideoProvider for Jitsi {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Jitsi
    }

    fn mint<'a>(
        &'a self,
        room: &'a Room,
        participant: &'a Participant,
        now: DateTime<Utc>,
    ) -> Pending<'a, Result<Minted, Error>> {
        Box::pin(async move {
            let signer = self.signer.as_ref().ok_or("this function does not sign Jitsi tokens")?;
            let claims = self.claims(room, participant, now);
            let token = signer.sign(&claims.to_json()).await?;
            Ok(Minted {
                join_url: Some(format!("{}?jwt={token}", self.join_url(room))),
                token,
                server_url: None,
                not_before: claims.not_before.min(now),
                expires: claims.expires,
                moderator: claims.grant.moderator,
            })
        })
    }

    fn prepare<'a>(&'a self, _room: &'a Room) -> Pending<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn needs_prepare(&self) -> bool {
        false
    }

    fn end<'a>(&'a self, room: &'a Room) -> Pending<'a, Result<(), String>> {
        Box::pin(async move {
            match &self.ender {
                // Prosody allows no clock skew: the system token is of now.
                Some(ender) => ender.end(&room.jitsi_room, Utc::now()).await,
                None => Ok(()),
            }
        })
    }

    fn occupancy<'a>(&'a self, _room: &'a Room) -> Pending<'a, Result<Occupancy, String>> {
        Box::pin(async { Ok(Occupancy::Unknown) })
    }

    fn health(&self) -> Pending<'_, ProviderState> {
        Box::pin(async move {
            let Some(url) = &self.health_url else { return ProviderState::Unconfigured };
            let started = Instant::now();
            let Ok(http) = self.http.get() else { return ProviderState::Down { latency_ms: 0 } };
            let answered = http.get(url).timeout(Duration::from_secs(2)).send().await;
            let latency_ms = started.elapsed().as_millis() as u64;
            match answered {
                Ok(r) if r.status().is_success() => ProviderState::Up { latency_ms },
                _ => ProviderState::Down { latency_ms },
            }
        })
    }
}
