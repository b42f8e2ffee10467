//! `room-end`: `POST /v1/virtual-care/rooms/{roomId}/end`. The room's doctor,
//! a clinic-admin or a service ends it; ending an ended room is 200 and
//! changes nothing; a cancelled room cannot end (409). Afterwards no token is
//! issued and Jitsi's reservation check refuses the room; the meeting is
//! ended at its provider (Jitsi's mod_muc_end_meeting, LiveKit's
//! DeleteRoom), and a failure there is retried by the scheduler.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use vcare_aws::SdkConfig;
use vcare_care::video::{Needs, Providers};
use vcare_care::{RoomError, Rooms};
use vcare_domain::events::{CONSULTATION_ENDED, DomainEvent};
use vcare_domain::room::{ParticipantRole, RoomStatus, Standing};
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{Authenticated, HttpFunction, Problem, Role};
use vcare_runtime::Env;

pub struct Ender {
    care: Rooms,
    /// Jitsi (Prosody's mod_muc_end_meeting when `JITSI_END_MEETING_URL`
    /// is set) and OpenVidu (LiveKit's DeleteRoom) when configured.
    providers: Providers,
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let care = Rooms::from_env(env, sdk)?;
    let providers = Providers::from_env(env, sdk, &care.config, Needs { tokens: false, end: true }).await?;
    let routes = Router::new().route("/v1/virtual-care/rooms/{room_id}/end", post(end));
    Ok(HttpFunction::audited(
        routes,
        Ender { care, providers },
        Audit::from_env(env, sdk)?,
        vec![Audited::new(
            Method::POST,
            "/v1/virtual-care/rooms/{room_id}/end",
            "room.end",
            "room",
            Subject::Path("room_id"),
        )],
    ))
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
    if changed {
        // The room is ended in vcare whatever the provider says; a failure
        // is kept with its retry (the scheduler's sweep).
        ender.providers.end_meeting(&care.store, &room, now, None).await?;
    }
    Ok(Json(care.view(&room)))
}
