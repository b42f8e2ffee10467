//! `room-end`: `POST /v1/virtual-care/rooms/{roomId}/end`. The room's doctor,
//! a clinic-admin or a service ends it; ending an ended room is 200 and
//! changes nothing; a cancelled room cannot end (409). Afterwards no token is
//! issued and Jitsi's reservation check refuses the room.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use vcare_aws::SdkConfig;
use vcare_care::{Care, no_room, store_problem};
use vcare_domain::events::{CONSULTATION_ENDED, DomainEvent};
use vcare_domain::room::{ParticipantRole, RoomStatus, Standing};
use vcare_http::{Caller, HttpFunction, Problem, Role};
use vcare_runtime::Env;

pub fn router(care: Arc<Care>) -> Router {
    Router::new().route("/v1/virtual-care/rooms/{room_id}/end", post(end)).with_state(care)
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    Ok(HttpFunction::new(router(Arc::new(Care::from_env(env, sdk)?))))
}

async fn end(
    State(care): State<Arc<Care>>,
    caller: Caller,
    Path(room_id): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
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
    let (room, _) = updated.ok_or_else(no_room)?;
    if room.status == RoomStatus::Cancelled {
        return Err(Problem::conflict("the room was cancelled"));
    }
    Ok(Json(care.view(&room)))
}
