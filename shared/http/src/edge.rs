//! How the services' errors reach callers: the one place that turns them
//! into problem+json. Details name no value the caller sent.

use vcare_care::RoomError;
use vcare_comms::NotifyError;
use vcare_domain::Rejected;

use crate::{Caller, Problem, Role};

/// A broken rule: 400 when a field fails its rule, 422 when the request is
/// well-formed but cannot be done.
impl From<Rejected> for Problem {
    fn from(r: Rejected) -> Self {
        match r {
            Rejected::Invalid(d) => Problem::bad_request(d),
            Rejected::Impossible(d) => Problem::unprocessable(d),
        }
    }
}

/// The problem `type` of a token asked for from the waiting room (API.md).
pub const WAITING_PROBLEM: &str = "/problems/waiting";

impl From<RoomError> for Problem {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::NoSuchRoom => Problem::not_found(e.to_string()),
            RoomError::ParticipantsOnly => Problem::forbidden(e.to_string()),
            RoomError::BadSharedSecret => Problem::unauthorized(e.to_string()),
            RoomError::Rejected(r) => r.into(),
            RoomError::BadCursor => Problem::bad_request(e.to_string()),
            RoomError::Unavailable | RoomError::ImagesUnavailable | RoomError::ProviderUnavailable => {
                Problem::service_unavailable(e.to_string())
            }
            RoomError::Corrupt => Problem::internal(),
            RoomError::NotJoinable(_) | RoomError::NotWaiting => Problem::conflict(e.to_string()),
            RoomError::Waiting => Problem { kind: WAITING_PROBLEM.into(), ..Problem::conflict(e.to_string()) },
            RoomError::NoSuchParticipant | RoomError::NoSuchRecording => Problem::not_found(e.to_string()),
            RoomError::RecordingsForbidden
            | RoomError::AdminsOnly
            | RoomError::DoctorsOnly
            | RoomError::LinkNotYours => Problem::forbidden(e.to_string()),
            RoomError::RecordingsUnavailable => Problem::service_unavailable(e.to_string()),
            RoomError::Conflict(_) => Problem::conflict(e.to_string()),
        }
    }
}

impl From<NotifyError> for Problem {
    fn from(e: NotifyError) -> Self {
        match e {
            NotifyError::Rejected(r) => r.into(),
            NotifyError::StorageUnavailable | NotifyError::Unavailable => Problem::service_unavailable(e.to_string()),
            NotifyError::Corrupt => Problem::internal(),
        }
    }
}

/// Requires one of `roles`, else 403.
pub fn require_role(caller: &Caller, roles: &[Role]) -> Result<(), Problem> {
    if caller.has_any_role(roles) { Ok(()) } else { Err(Problem::forbidden("your role may not do this")) }
}

/// The `Idempotency-Key` header: required, 1 to 128 printable ASCII characters.
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<String, Problem> {
    use vcare_domain::notification::MAX_IDEMPOTENCY_KEY;
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| Problem::bad_request("the Idempotency-Key header is required"))?
        .to_str()
        .map_err(|_| Problem::bad_request("Idempotency-Key: printable ASCII"))?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::bad_request(format!(
            "Idempotency-Key: 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )));
    }
    Ok(key.to_owned())
}
