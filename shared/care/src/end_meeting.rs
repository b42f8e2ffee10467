//! Ending a Jitsi meeting when its room ends: Prosody's
//! mod_muc_end_meeting, called with a system token of its own key.

use std::time::Duration;

use vcare_aws::SdkConfig;
use vcare_jitsi::{EndMeeting, Signer};
use vcare_runtime::{Env, Error};

use crate::RoomsConfig;

/// Where system-token public keys go in the keys bucket (Prosody's
/// `prosody_password_public_key_repo_url` points here, never at the login keys).
pub const SYSTEM_KEYS_PREFIX: &str = "system/";

/// With `JITSI_END_MEETING_URL` set, also `JITSI_APP_ID`, `JITSI_SYSTEM_KEY_ID`
/// (a KMS RSA key of its own; its public key goes to `JITSI_PUBLIC_KEYS_BUCKET`
/// as `system/sha256hex(JITSI_SYSTEM_KID).pem` for
/// `prosody_password_public_key_repo_url`),
/// optional `JITSI_MUC_DOMAIN` (default `conference.<JITSI_DOMAIN>`).
pub async fn from_env(env: &Env, sdk: &SdkConfig, config: &RoomsConfig) -> Result<Option<EndMeeting>, Error> {
    Ok(match env.get("JITSI_END_MEETING_URL") {
        None => None,
        Some(url) => {
            let signer = Signer::kms_rs256_published(
                aws_sdk_kms::Client::new(sdk),
                &aws_sdk_s3::Client::new(sdk),
                env.required("JITSI_SYSTEM_KEY_ID")?,
                env.get("JITSI_SYSTEM_KID").unwrap_or("vcare-system-1").to_owned(),
                &env.required("JITSI_PUBLIC_KEYS_BUCKET")?,
                SYSTEM_KEYS_PREFIX,
            )
            .await?;
            Some(EndMeeting {
                url: url.to_owned(),
                muc_domain: env
                    .get("JITSI_MUC_DOMAIN")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("conference.{}", config.jitsi_domain)),
                app_id: env.required("JITSI_APP_ID")?,
                domain: config.jitsi_domain.clone(),
                signer,
                http: reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?,
                attempts: env.bounded("JITSI_END_ATTEMPTS", 3, 1, 10)?,
                backoff: Duration::from_millis(env.bounded("JITSI_END_BACKOFF_MS", 200, 1, 10_000)?),
            })
        }
    })
}
