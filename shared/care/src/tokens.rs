//! Jitsi join tokens for a room's participants: what `token-issue` answers
//! and what reminders carry. HS256 with the app secret (decrypted once per
//! container) or RS256 by a KMS key whose public key is published for
//! Prosody (`login/`).

use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_domain::room::{Participant, Room};
use vcare_jitsi::{AppSecret, Signer, TokenClaims, grant};
use vcare_runtime::{ConfigError, Env, Error};

use crate::{Rooms, RoomsConfig};

pub const LOGIN_KEYS_PREFIX: &str = "login/";

pub struct TokenIssuer {
    pub care: Rooms,
    app_id: String,
    audience: String,
    signer: Signer,
}

/// A signed token and the link that carries it.
pub struct JoinToken {
    pub token: String,
    pub join_url: String,
    pub claims: TokenClaims,
}

impl TokenIssuer {
    pub async fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, Error> {
        let care = Rooms::new(RoomsConfig::from_env(env)?, sdk);
        let app_id = env.required("JITSI_APP_ID")?;
        let audience = env.get("JITSI_AUDIENCE").unwrap_or("jitsi").to_owned();
        let kms = aws_sdk_kms::Client::new(sdk);
        let signer = match env.get("JITSI_SIGNING").unwrap_or("hs256") {
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
        };
        Ok(Self { care, app_id, audience, signer })
    }

    /// A token for `participant` of `room`, valid for the room's join window.
    pub async fn issue(&self, room: &Room, participant: &Participant, now: DateTime<Utc>) -> Result<JoinToken, Error> {
        let policy = &self.care.config.join;
        let claims = TokenClaims {
            app_id: self.app_id.clone(),
            audience: self.audience.clone(),
            domain: self.care.config.jitsi_domain.clone(),
            room: room.jitsi_room.clone(),
            user_id: participant.user_id.clone(),
            user_name: participant.display_name.clone(),
            grant: grant(room, participant),
            issued_at: now,
            not_before: policy.opens(room),
            expires: policy.closes(room),
        };
        let token = self.signer.sign(&claims.to_json()).await?;
        let join_url = format!("{}?jwt={token}", self.care.join_url(room));
        Ok(JoinToken { token, join_url, claims })
    }
}
