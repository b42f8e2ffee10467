//! LiveKit's RoomService (and, in `egress`, its Egress service) over
//! Twirp JSON (`POST <url>/twirp/<service>/<Method>`, `Authorization:
//! Bearer` a server token with that call's grant only). Transient failures
//! (connection, timeout, 5xx, Twirp `unavailable`) are retried with
//! backoff like the Jitsi end-meeting client; a 4xx is an answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use vcare_domain::video::livekit::ServerCall;

use vcare_runtime::http::LazyClient;

use crate::Credentials;

/// Each call's time limit, per attempt.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// What a room is created with (API.md: `emptyTimeout`,
/// `departureTimeout`, `maxParticipants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomSettings {
    pub empty_timeout_seconds: u32,
    pub departure_timeout_seconds: u32,
    pub max_participants: u32,
}

/// A participant LiveKit lists in a room.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LiveParticipant {
    #[serde(default)]
    pub identity: String,
    #[serde(default)]
    pub state: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwirpError {
    /// The server answered with a Twirp error (`code`, never the message,
    /// which may name a participant).
    #[error("LiveKit answered {status} {code}")]
    Answered { status: u16, code: String },
    #[error("LiveKit unreachable: {0}")]
    Unreachable(&'static str),
}

impl TwirpError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Answered { code, .. } if code == "not_found")
    }
}

/// What a health probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Up { latency_ms: u64 },
    Down { latency_ms: u64 },
}

#[derive(Clone)]
pub struct RoomService {
    /// The server's https base (OpenVidu's `OPENVIDU_URL`).
    pub url: String,
    pub credentials: Arc<Credentials>,
    /// Made on the first call, not at cold start.
    pub http: LazyClient,
    pub attempts: u32,
    pub backoff: Duration,
}

#[derive(Deserialize)]
struct TwirpAnswer {
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
struct Participants {
    #[serde(default)]
    participants: Vec<LiveParticipant>,
}

impl RoomService {
    /// One call; its token is issued by the wall clock, which LiveKit
    /// checks it against (never a business "now" that may be a catch-up's).
    pub(crate) async fn call(&self, call: ServerCall<'_>, body: Value) -> Result<Value, TwirpError> {
        self.call_with(call, body, self.attempts).await
    }

    /// [`Self::call`] with `attempts` (1 for a call that must not be made twice).
    pub(crate) async fn call_with(
        &self,
        call: ServerCall<'_>,
        body: Value,
        attempts: u32,
    ) -> Result<Value, TwirpError> {
        let token = self.credentials.sign(&call.claims(&self.credentials.api_key, Utc::now()));
        let url = format!("{}/twirp/{}/{}", self.url.trim_end_matches('/'), call.service(), call.method());
        let http = self.http.get().map_err(|_| TwirpError::Unreachable("no HTTP client"))?;
        let mut last = TwirpError::Unreachable("no attempt");
        for attempt in 0..attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.backoff * 4u32.pow(attempt - 1)).await;
            }
            let sent = http.post(&url).timeout(CALL_TIMEOUT).bearer_auth(&token).json(&body).send().await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    return r.json::<Value>().await.map_err(|_| TwirpError::Unreachable("unreadable answer"));
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let code = r.json::<TwirpAnswer>().await.map(|a| a.code).unwrap_or_default();
                    last = TwirpError::Answered { status, code };
                    let transient = status >= 500 || status == 429;
                    if !transient {
                        return Err(last);
                    }
                }
                Err(e) => last = TwirpError::Unreachable(if e.is_timeout() { "timeout" } else { "connection failed" }),
            }
            tracing::warn!(attempt = attempt + 1, method = call.method(), error = %last, "a LiveKit call failed");
        }
        Err(last)
    }

    /// Creates the room (LiveKit answers an existing room as it is).
    pub async fn create_room(&self, name: &str, settings: RoomSettings) -> Result<(), TwirpError> {
        let body = json!({
            "name": name,
            "emptyTimeout": settings.empty_timeout_seconds,
            "departureTimeout": settings.departure_timeout_seconds,
            "maxParticipants": settings.max_participants,
        });
        self.call(ServerCall::CreateRoom, body).await.map(drop)
    }

    /// Deletes the room, disconnecting everyone; a room already gone is done.
    pub async fn delete_room(&self, name: &str) -> Result<(), TwirpError> {
        match self.call(ServerCall::DeleteRoom, json!({"room": name})).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }

    /// Who is in the room; `None` when LiveKit has no such room.
    pub async fn list_participants(&self, name: &str) -> Result<Option<Vec<LiveParticipant>>, TwirpError> {
        match self.call(ServerCall::ListParticipants { room: name }, json!({"room": name})).await {
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
            Ok(v) => serde_json::from_value::<Participants>(v)
                .map(|p| Some(p.participants))
                .map_err(|_| TwirpError::Unreachable("unreadable answer")),
        }
    }

    /// Removes one participant (a participant no longer there is done).
    pub async fn remove_participant(&self, name: &str, identity: &str) -> Result<(), TwirpError> {
        let body = json!({"room": name, "identity": identity});
        match self.call(ServerCall::RemoveParticipant { room: name }, body).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }

    pub async fn health(&self) -> Health {
        probe(&self.http, &self.url).await
    }
}

/// LiveKit answers `GET /` with 200 when it is serving; no credentials.
pub async fn probe(http: &LazyClient, url: &str) -> Health {
    let started = Instant::now();
    let Ok(http) = http.get() else { return Health::Down { latency_ms: 0 } };
    let answered = http.get(url).timeout(Duration::from_secs(2)).send().await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match answered {
        Ok(r) if r.status().is_success() => Health::Up { latency_ms },
        _ => Health::Down { latency_ms },
    }
}
