//! LiveKit's rules (OpenVidu 3 is LiveKit underneath), as its server checks
//! them (`livekit/protocol` `auth`):
//!
//! - a token is an HS256 JWT with `iss` = the API key, `sub` = the
//!   participant's identity, `nbf`/`exp` in seconds, `name`, `metadata` (a
//!   string) and the `video` grant in camelCase;
//! - a server call carries a token whose grant is what that call needs
//!   (`roomCreate` for CreateRoom and DeleteRoom, `roomAdmin` + `room` for
//!   ListParticipants and RemoveParticipant, `roomList` for ListRooms,
//!   `roomRecord` for the Egress service's calls);
//! - a webhook is JSON (protojson: field names in lowerCamelCase, also read
//!   as snake_case; int64 values as strings) with `Authorization` a JWT of
//!   the API key whose `sha256` claim is the base64 SHA-256 of the body.

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::jitsi::Refused;
use crate::room::{Participant, ParticipantRole, Room, SessionEvent};

/// How long a server call's token lives: long enough for its retries.
pub const SERVER_TOKEN_SECONDS: i64 = 300;
/// Clock skew allowed on a webhook's `nbf`/`exp` (LiveKit's own verifier
/// allows a minute too).
pub const WEBHOOK_LEEWAY_SECONDS: u64 = 60;

/// The claims of a participant's join token: every participant publishes,
/// subscribes and sends data; doctors administer the room; nobody records
/// (recording is vcare's, started through egress).
pub fn participant_claims(
    api_key: &str,
    room: &Room,
    participant: &Participant,
    not_before: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Value {
    let doctor = participant.role == ParticipantRole::Doctor;
    json!({
        "iss": api_key,
        "sub": participant.user_id,
        "name": participant.display_name,
        "nbf": not_before.timestamp(),
        "exp": expires.timestamp(),
        "metadata": json!({"role": participant.role.as_str()}).to_string(),
        "video": {
            "roomJoin": true,
            "room": room.jitsi_room,
            "canPublish": true,
            "canSubscribe": true,
            "canPublishData": true,
            "roomAdmin": doctor,
            "roomRecord": false,
        },
    })
}

/// A RoomService call, and the grant its token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCall<'a> {
    CreateRoom,
    DeleteRoom,
    ListRooms,
    ListParticipants {
        room: &'a str,
    },
    RemoveParticipant {
        room: &'a str,
    },
    /// `livekit.Egress`: a room-composite recording, its stop, and the
    /// list (by egress id) the recordings sweep asks.
    StartRoomCompositeEgress,
    StopEgress,
    ListEgress,
}

impl ServerCall<'_> {
    /// The Twirp method name (`/twirp/livekit.RoomService/<method>`).
    pub fn method(&self) -> &'static str {
        match self {
            Self::CreateRoom => "CreateRoom",
            Self::DeleteRoom => "DeleteRoom",
            Self::ListRooms => "ListRooms",
            Self::ListParticipants { .. } => "ListParticipants",
            Self::RemoveParticipant { .. } => "RemoveParticipant",
            Self::StartRoomCompositeEgress => "StartRoomCompositeEgress",
            Self::StopEgress => "StopEgress",
            Self::ListEgress => "ListEgress",
        }
    }

    /// The Twirp service (`/twirp/<service>/<method>`).
    pub fn service(&self) -> &'static str {
        match self {
            Self::StartRoomCompositeEgress | Self::StopEgress | Self::ListEgress => "livekit.Egress",
            _ => "livekit.RoomService",
        }
    }

    /// Only what the call needs.
    pub fn grant(&self) -> Value {
        match self {
            Self::CreateRoom | Self::DeleteRoom => json!({"roomCreate": true}),
            Self::ListRooms => json!({"roomList": true}),
            Self::ListParticipants { room } | Self::RemoveParticipant { room } => {
                json!({"roomAdmin": true, "room": room})
            }
            Self::StartRoomCompositeEgress | Self::StopEgress | Self::ListEgress => json!({"roomRecord": true}),
        }
    }

    /// The server token's claims, issued at `now`.
    pub fn claims(&self, api_key: &str, now: DateTime<Utc>) -> Value {
        let now = now.timestamp();
        json!({"iss": api_key, "nbf": now, "exp": now + SERVER_TOKEN_SECONDS, "video": self.grant()})
    }
}

/// A webhook's meaning for vcare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// LiveKit's event id (`EV_…`), for logs and counting duplicates.
    pub id: String,
    pub event: String,
    /// The LiveKit room's name (vcare's `jitsiRoom`), lowercase.
    pub room_name: Option<String>,
    /// What the session rules make of it; `None` for events that change
    /// nothing (track and egress events, a participant leaving).
    pub session: Option<SessionEvent>,
    /// `egress_started`, `egress_updated`, `egress_ended`: the egress.
    pub egress: Option<super::egress::EgressInfo>,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    event: String,
    #[serde(default)]
    id: String,
    #[serde(default, alias = "created_at", rename = "createdAt")]
    created_at: Option<Int64>,
    #[serde(default)]
    room: Option<RoomInfo>,
    #[serde(default)]
    participant: Option<ParticipantInfo>,
    #[serde(default, alias = "egress_info", rename = "egressInfo")]
    egress_info: Option<Value>,
}

#[derive(Deserialize)]
struct RoomInfo {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct ParticipantInfo {
    #[serde(default, alias = "joined_at", rename = "joinedAt")]
    joined_at: Option<Int64>,
}

/// protojson writes int64 as a string; some writers use a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Int64 {
    Text(String),
    Number(i64),
}

impl Int64 {
    fn seconds(&self) -> Option<DateTime<Utc>> {
        let s = match self {
            Int64::Text(t) => t.parse::<i64>().ok()?,
            Int64::Number(n) => *n,
        };
        if (1..100_000_000_000).contains(&s) { Utc.timestamp_opt(s, 0).single() } else { None }
    }
}

fn seconds(value: Option<&Int64>, field: &'static str) -> Result<Option<DateTime<Utc>>, Refused> {
    match value {
        None => Ok(None),
        Some(v) => v.seconds().map(Some).ok_or(Refused { status: 400, detail: field }),
    }
}

pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

/// A webhook body's size: at most [`MAX_WEBHOOK_BYTES`] (413), checked
/// before its bytes are hashed or parsed.
pub fn within_size(body: &[u8]) -> Result<(), Refused> {
    if body.len() > MAX_WEBHOOK_BYTES {
        return Err(Refused { status: 413, detail: "a webhook body is at most 64 KiB" });
    }
    Ok(())
}

/// Parses a verified webhook body. `participant_joined` starts the
/// session at the participant's `joinedAt` (else the event's time, else
/// `now`); `room_finished` ends it at the event's time. Others change
/// nothing. Unknown fields are ignored, as LiveKit adds them.
pub fn webhook(body: &[u8], now: DateTime<Utc>) -> Result<Webhook, Refused> {
    within_size(body)?;
    let body: Body = serde_json::from_slice(body)
        .map_err(|_| Refused { status: 400, detail: "the body is not a LiveKit webhook" })?;
    if body.event.is_empty() {
        return Err(Refused { status: 400, detail: "event is required" });
    }
    let created = seconds(body.created_at.as_ref(), "createdAt: seconds since the epoch")?;
    let session = match body.event.as_str() {
        "participant_joined" => {
            let joined = seconds(
                body.participant.as_ref().and_then(|p| p.joined_at.as_ref()),
                "participant.joinedAt: seconds since the epoch",
            )?;
            Some(SessionEvent::OccupantJoined(joined.or(created).unwrap_or(now)))
        }
        "room_finished" => Some(SessionEvent::RoomDestroyed(created.unwrap_or(now))),
        _ => None,
    };
    let egress = match (body.event.as_str(), body.egress_info) {
        ("egress_started" | "egress_updated" | "egress_ended", Some(info)) => {
            Some(super::egress::EgressInfo::parse(&info)?)
        }
        ("egress_started" | "egress_updated" | "egress_ended", None) => {
            return Err(Refused { status: 400, detail: "egressInfo is required" });
        }
        _ => None,
    };
    Ok(Webhook {
        id: body.id,
        event: body.event,
        room_name: body
            .room
            .map(|r| r.name)
            .or_else(|| egress.as_ref().map(|e| e.room_name.clone()))
            .map(|n| n.to_lowercase())
            .filter(|n| !n.is_empty()),
        session,
        egress,
    })
}
