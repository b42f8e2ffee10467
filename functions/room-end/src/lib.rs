//! `room-end`: `POST /v1/virtual-care/rooms/{roomId}/end`. The room's doctor,
//! a clinic-admin or a service ends it; ending an ended room is 200 and
//! changes nothing; a cancelled room cannot end (409). Afterwards no token is
//! issued and Jitsi's reservation check refuses the room.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use vcare_aws::SdkConfig;
use vcare_care::{RoomError, Rooms};
use vcare_domain::events::{CONSULTATION_ENDED, DomainEvent};
use vcare_domain::room::{ParticipantRole, RoomStatus, Standing};
use vcare_domain::room_records::EndPending;
use vcare_http::{Authenticated, HttpFunction, Problem, Role};
use vcare_jitsi::EndMeeting;
use vcare_runtime::Env;

pub struct Ender {
    care: Rooms,
    /// Set when `JITSI_END_MEETING_URL` is: Prosody's mod_muc_end_meeting.
    jitsi: Option<EndMeeting>,
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let care = Rooms::from_env(env, sdk)?;
    let jitsi = vcare_care::end_meeting::from_env(env, sdk, &care.config).await?;
    let routes = Router::new().route("/v1/virtual-care/rooms/{room_id}/end", post(end));
    Ok(HttpFunction::serving(routes, Ender { care, jitsi }))
}

async fn end(
    State(ender): State<Arc<Ender>>,
    caller: Authenticated,
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
        .map_err(RoomError::from)?;
    let (room, changed) = updated.ok_or(RoomError::NoSuchRoom)?;
    if room.status == RoomStatus::Cancelled {
        return Err(Problem::conflict("the room was cancelled"));
    }
    if let (Some(jitsi), true) = (&ender.jitsi, changed) {
        // The room is ended in vcare whatever Jitsi says; a failure is kept.
        if let Err(why) = jitsi.end(&room.jitsi_room, now).await {
            tracing::error!(room_id = %room.room_id, error = %why, "the Jitsi meeting could not be ended; recorded as pending");
            if let Err(e) = care.store.keep_end_pending(&room, &EndPending { error: why, at: now }).await {
                tracing::error!(room_id = %room.room_id, error = %e, "recording the pending Jitsi end failed");
            }
        }
    }
    Ok(Json(care.view(&room)))
}
