//! Errors for Jitsi's callers: problem+json with the `message` member
//! Prosody's modules read (`mod_reservations` shows it to the user).

use axum::http::{HeaderMap, StatusCode};
use vcare_care::RoomError;

use crate::Problem;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitsiProblem {
    pub status: StatusCode,
    pub message: String,
}

pub fn jitsi_problem(status: u16, text: impl Into<String>) -> JitsiProblem {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    JitsiProblem { status, message: text.into() }
}

impl From<Problem> for JitsiProblem {
    fn from(p: Problem) -> Self {
        Self { status: p.status, message: p.detail }
    }
}

impl From<RoomError> for JitsiProblem {
    fn from(e: RoomError) -> Self {
        Problem::from(e).into()
    }
}

impl axum::response::IntoResponse for JitsiProblem {
    fn into_response(self) -> axum::response::Response {
        let body = serde_json::json!({
            "type": "about:blank", "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(), "detail": self.message, "message": self.message,
        });
        (self.status, [(axum::http::header::CONTENT_TYPE, "application/problem+json")], body.to_string())
            .into_response()
    }
}

/// The `X-Jitsi-Shared-Secret` a Jitsi callback presents.
pub fn jitsi_shared_secret(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get("x-jitsi-shared-secret").map(|v| v.as_bytes())
}
