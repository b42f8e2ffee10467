//! `recordings` (API.md "Recordings and dial-in"):
//! - `POST .../rooms/{roomId}/consent` `{"recording": bool}`: a listed
//!   participant, for themself → 200 `{"roomId", "userId", "recording",
//!   "at", "recordingAllowed"}`. The room may be recorded only while every
//!   listed patient's answer is yes; until then a doctor's Jitsi token has
//!   `features.recording` `"false"`. Anyone not listed is 404, an ended or
//!   cancelled room 409.
//! - `POST /v1/virtual-care/jibri/recordings` (`X-Jitsi-Shared-Secret`)
//!   `{"roomName", "contentType", "sizeBytes"}` → 201 `{"recordingId",
//!   "uploadUrl", "uploadHeaders", "expiresAt"}`: Jibri's finalize step;
//!   409 for a room that may not be recorded.
//!   A recording larger than `RECORDING_PART_BYTES` (1 GiB) goes in parts:
//!   `{"recordingId", "parts": [{"partNumber", "offset", "sizeBytes"}],
//!   "expiresAt"}`, each part's PUT from `POST .../{recordingId}/parts/{n}`
//!   → `{"uploadUrl", "uploadHeaders", "expiresAt"}`.
//! - `POST /v1/virtual-care/jibri/recordings/{recordingId}/complete` (no
//!   body, or `{"parts": [{"partNumber", "etag"}]}`) → 200 once the object
//!   is checked (else 409, nothing changed). The secret is checked before
//!   any body is read.
//! - `GET .../rooms/{roomId}/recordings`: the room's doctors and the
//!   clinic's admins (patients where `CLINIC_PATIENT_RECORDING_ACCESS`
//!   names the clinic) → `[...]` (API.md), each ready one with a download URL.
//! - `POST .../rooms/{roomId}/recording/start` and `/stop` (the room's
//!   doctors): OpenVidu rooms, LiveKit egress into the recordings bucket
//!   → 202 with the recording (`starting`; settled by `egress_ended`, or
//!   the sweep). 409 for Jitsi rooms, until every patient said yes, and
//!   while already recording (start) or not (stop). A patient's "no"
//!   stops the egress.
//! - `PUT /v1/virtual-care/recordings/{id}/hold` `{"hold": bool}` and
//!   `DELETE /v1/virtual-care/recordings/{id}` (clinic-admins): legal hold
//!   (S3 Object Lock), and deletion of one not under hold (204; 409 held).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_care::recordings::{RecordingStorage, Recordings};
use vcare_care::video::OpenVidu;
use vcare_domain::recording::ConsentRequest;
use vcare_domain::recordings::{HoldRequest, JibriComplete, JibriUpload};
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem, jitsi_shared_secret, json_body, json_or_default};
use vcare_runtime::Env;

struct Service {
    recordings: Recordings,
    storage: RecordingStorage,
    /// Jibri's `X-Jitsi-Shared-Secret` (the Jitsi webhook secret).
    secret: vcare_jitsi::WebhookSecret,
    /// LiveKit's egress, when the deployment has OpenVidu (its secret
    /// opened on the first start or stop).
    openvidu: Option<OpenVidu>,
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let (recordings, storage) = Recordings::with_storage(env, sdk)?;
    let config = &recordings.care.config;
    let openvidu = match &config.openvidu {
        Some(settings) => Some(OpenVidu::from_env(env, sdk, settings.clone(), config.join, true)?),
        None => None,
    };
    let secret = vcare_care::webhook_secret(env, sdk).await?;
    let routes = Router::new()
        .route("/v1/virtual-care/rooms/{room_id}/consent", post(consent))
        .route("/v1/virtual-care/rooms/{room_id}/recordings", get(list))
        .route("/v1/virtual-care/rooms/{room_id}/recording/start", post(start))
        .route("/v1/virtual-care/rooms/{room_id}/recording/stop", post(stop))
        .route("/v1/virtual-care/jibri/recordings", post(jibri_upload))
        .route("/v1/virtual-care/jibri/recordings/{recording_id}/parts/{part_number}", post(jibri_part))
        .route("/v1/virtual-care/jibri/recordings/{recording_id}/complete", post(jibri_complete))
        .route("/v1/virtual-care/recordings/{recording_id}/hold", put(hold))
        .route("/v1/virtual-care/recordings/{recording_id}", delete(remove));
    Ok(HttpFunction::audited(
        routes,
        Service { recordings, storage, secret, openvidu },
        Audit::from_env(env, sdk)?,
        vec![
            Audited::new(
                Method::POST,
                "/v1/virtual-care/rooms/{room_id}/consent",
                "recording.consent",
                "room",
                Subject::Path("room_id"),
            ),
            Audited::new(
                Method::GET,
                "/v1/virtual-care/rooms/{room_id}/recordings",
                "recording.list",
                "room",
                Subject::Path("room_id"),
            ),
            Audited::new(
                Method::POST,
                "/v1/virtual-care/rooms/{room_id}/recording/start",
                "recording.start",
                "room",
                Subject::Path("room_id"),
            ),
            Audited::new(
                Method::POST,
                "/v1/virtual-care/rooms/{room_id}/recording/stop",
                "recording.stop",
                "room",
                Subject::Path("room_id"),
            ),
            Audited::new(
                Method::PUT,
                "/v1/virtual-care/recordings/{recording_id}/hold",
                "recording.hold",
                "recording",
                Subject::Path("recording_id"),
            ),
            Audited::new(
                Method::DELETE,
                "/v1/virtual-care/recordings/{recording_id}",
                "recording.delete",
                "recording",
                Subject::Path("recording_id"),
            ),
        ],
    ))
}

async fn consent(
    State(s): State<Arc<Service>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<ConsentRequest>,
) -> Result<Json<Value>, Problem> {
    Ok(Json(s.recordings.consent(&caller, &room_id, body.recording, s.openvidu.as_ref()).await?.view()))
}

async fn start(
    State(s): State<Arc<Service>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let r = s.recordings.start_egress(&s.storage, s.openvidu.as_ref(), &caller, &room_id).await?;
    Ok((StatusCode::ACCEPTED, Json(r.view())))
}

async fn stop(
    State(s): State<Arc<Service>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let r = s.recordings.stop_egress(s.openvidu.as_ref(), &caller, &room_id).await?;
    Ok((StatusCode::ACCEPTED, Json(r.view())))
}

async fn list(
    State(s): State<Arc<Service>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    Ok(Json(Value::Array(s.recordings.list(&s.storage, &caller, &room_id).await?)))
}

/// Jibri's calls: the shared secret is checked before the body is read,
/// so a caller without it learns nothing from how its body is refused.
fn jibri(s: &Service, headers: &HeaderMap) -> Result<(), Problem> {
    Ok(vcare_care::check_jitsi_secret(&s.secret, jitsi_shared_secret(headers))?)
}

async fn jibri_upload(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    jibri(&s, &headers)?;
    let body: JibriUpload = json_body(&headers, &body)?;
    let up = s.recordings.jibri_upload(&s.storage, &s.secret, jitsi_shared_secret(&headers), body).await?;
    let mut out = json!({"recordingId": up.recording_id, "expiresAt": up.expires_at});
    match up.single {
        Some((url, upload_headers)) => {
            out["uploadUrl"] = json!(url);
            out["uploadHeaders"] = json!(upload_headers);
        }
        None => {
            let parts: Vec<Value> = up
                .parts
                .iter()
                .map(|p| json!({"partNumber": p.number, "offset": p.offset, "sizeBytes": p.size_bytes}))
                .collect();
            out["parts"] = json!(parts);
        }
    }
    Ok((StatusCode::CREATED, Json(out)))
}

async fn jibri_part(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Path((recording_id, number)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    let presented = jitsi_shared_secret(&headers);
    let part = s.recordings.jibri_part(&s.storage, &s.secret, presented, &recording_id, &number).await?;
    Ok(Json(json!({"uploadUrl": part.url, "uploadHeaders": part.headers, "expiresAt": part.expires_at})))
}

async fn jibri_complete(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Path(recording_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    jibri(&s, &headers)?;
    let parts: JibriComplete = json_or_default(&body)?;
    let presented = jitsi_shared_secret(&headers);
    let r = s.recordings.jibri_complete(&s.storage, &s.secret, presented, &recording_id, parts).await?;
    Ok(Json(json!({"recordingId": r.recording_id, "status": r.status, "sizeBytes": r.size_bytes})))
}

async fn hold(
    State(s): State<Arc<Service>>,
    caller: Authenticated,
    Path(recording_id): Path<String>,
    ApiJson(body): ApiJson<HoldRequest>,
) -> Result<Json<Value>, Problem> {
    let r = s.recordings.set_hold(&s.storage, &caller, &recording_id, body.hold).await?;
    Ok(Json(r.view()))
}

async fn remove(
    State(s): State<Arc<Service>>,
    caller: Authenticated,
    Path(recording_id): Path<String>,
) -> Result<StatusCode, Problem> {
    s.recordings.delete(&s.storage, &caller, &recording_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
