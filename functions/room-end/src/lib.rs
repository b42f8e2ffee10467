//! `room-end`: `POST /v1/virtual-care/rooms/{roomId}/end`. The room's doctor,
//! a clinic-admin or a service ends it; ending an ended room is 200 and
//! changes nothing; a cancelled room cannot end (409). Afterwards no token is
//! issued and Jitsi's reservation check refuses the room.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use vcare_aws::SdkConfig;
use vcare_care::{Care, no_room, store_problem};
use vcare_domain::events::{CONSULTATION_ENDED, DomainEvent};
use vcare_domain::room::{ParticipantRole, RoomStatus, Standing};
use vcare_http::{Caller, HttpFunction, Problem, Role};
use vcare_jitsi::{EndMeeting, Signer};
use vcare_runtime::Env;

pub struct Ender {
    care: Care,
    /// Set when `JITSI_END_MEETING_URL` is: Prosody's mod_muc_end_meeting.
    jitsi: Option<EndMeeting>,
}

/// The record of a Jitsi meeting vcare could not end (after its retries):
/// kept under the room for an operator or a later sweep; Prosody ends the
/// conference at the reservation's end in any case.
pub const JITSI_END_PENDING: &str = "JITSI_END";

/// Where system-token public keys go in the keys bucket (Prosody's
/// `prosody_password_public_key_repo_url` points here, never at the login keys).
pub const SYSTEM_KEYS_PREFIX: &str = "system/";

pub fn router(ender: Arc<Ender>) -> Router {
    Router::new().route("/v1/virtual-care/rooms/{room_id}/end", post(end)).with_state(ender)
}

/// With `JITSI_END_MEETING_URL` set, also `JITSI_APP_ID`, `JITSI_SYSTEM_KEY_ID`
/// (a KMS RSA key of its own; its public key goes to `JITSI_PUBLIC_KEYS_BUCKET`
/// as `system/sha256hex(JITSI_SYSTEM_KID).pem` for
/// `prosody_password_public_key_repo_url`),
/// optional `JITSI_MUC_DOMAIN` (default `conference.<JITSI_DOMAIN>`).
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let care = Care::from_env(env, sdk)?;
    let jitsi = match env.get("JITSI_END_MEETING_URL") {
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
                    .unwrap_or_else(|| format!("conference.{}", care.config.jitsi_domain)),
                app_id: env.required("JITSI_APP_ID")?,
                domain: care.config.jitsi_domain.clone(),
                signer,
                http: reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?,
                attempts: env.bounded("JITSI_END_ATTEMPTS", 3, 1, 10)?,
                backoff: Duration::from_millis(env.bounded("JITSI_END_BACKOFF_MS", 200, 1, 10_000)?),
            })
        }
    };
    Ok(HttpFunction::new(router(Arc::new(Ender { care, jitsi }))))
}

async fn end(
    State(ender): State<Arc<Ender>>,
    caller: Caller,
    Path(room_id): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let care = &ender.care;
    let (room, standing) = care.room_for(&caller, &room_id).await?;
    let may_end = standing == Standing::Participant(ParticipantRole::Doctor)
        || caller.has_any_role(&[Role::ClinicAdmin, Role::Service]);
    if !may_end {
        return Err(Problem::forbidden("only the room's doctor, a clinic-admin or a service may end it"));
    }
    if room.status == RoomStatus::Cancelled {
        return Err(Problem::conflict("the room was cancelled"));
    }
    let now = care.now();
    let updated = care
        .store
        .update(&caller.clinic_id, &room.room_id, |current| {
            if !current.status.can_become(RoomStatus::Ended) {
                return None;
            }
            let mut next = current.clone();
            next.status = RoomStatus::Ended;
            next.ended_at = Some(now);
            next.duration_seconds = current.started_at.map_or(0, |s| (now - s).num_seconds().max(0));
            let event = DomainEvent::about_room(CONSULTATION_ENDED, &next, now);
            Some((next, vec![event]))
        })
        .await
        .map_err(store_problem)?;
    let (room, changed) = updated.ok_or_else(no_room)?;
    if room.status == RoomStatus::Cancelled {
        return Err(Problem::conflict("the room was cancelled"));
    }
    if let (Some(jitsi), true) = (&ender.jitsi, changed) {
        // The room is ended in vcare whatever Jitsi says; a failure is kept.
        if let Err(why) = jitsi.end(&room.jitsi_room).await {
            tracing::error!(room_id = %room.room_id, error = %why, "the Jitsi meeting could not be ended; recorded as pending");
            let record = HashMap::from([
                ("error".to_owned(), AttributeValue::S(why)),
                ("at".to_owned(), AttributeValue::S(now.to_rfc3339())),
            ]);
            if let Err(e) = care.store.put_child_if_absent(&room, JITSI_END_PENDING, record).await {
                tracing::error!(room_id = %room.room_id, error = %e, "recording the pending Jitsi end failed");
            }
        }
    }
    Ok(Json(care.view(&room)))
}
