//! What Jitsi's Prosody modules post to vcare, parsed before anything is
//! looked up: event_sync's webhooks (JSON) and mod_reservations' request
//! (a form). Pure, so the fuzz targets reach them as Prosody would.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

use crate::room::SessionEvent;

/// Why a post is refused: the HTTP status and a detail naming the field
/// (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub detail: &'static str,
}

const fn refused(status: u16, detail: &'static str) -> Refused {
    Refused { status, detail }
}

/// The event_sync fields vcare uses; others are ignored.
#[derive(Debug, Deserialize)]
struct Payload {
    room_name: String,
    #[serde(default)]
    created_at: Option<f64>,
    #[serde(default)]
    destroyed_at: Option<f64>,
    #[serde(default)]
    occupant: Option<Occupant>,
}

#[derive(Debug, Deserialize)]
struct Occupant {
    #[serde(default)]
    joined_at: Option<f64>,
}

/// An event_sync post: the room it is about (lower-cased, as vcare names
/// Jitsi rooms) and what it does to the consultation, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncEvent {
    pub room_name: String,
    pub session: Option<SessionEvent>,
}

/// Seconds since the epoch as event_sync sends them (a JSON number).
fn at(seconds: Option<f64>, field: &'static str) -> Result<Option<DateTime<Utc>>, Refused> {
    match seconds {
        None => Ok(None),
        Some(s) if s.is_finite() && (0.0..1e11).contains(&s) => Ok(Utc.timestamp_opt(s as i64, 0).single()),
        Some(_) => Err(refused(400, field)),
    }
}

/// `POST …/jitsi/events/{kind}/{what}` with `body`; `now` stands in for a
/// time the event does not carry.
pub fn event_sync(kind: &str, what: &str, body: &[u8], now: DateTime<Utc>) -> Result<SyncEvent, Refused> {
    let payload: Payload = serde_json::from_slice(body)
        .map_err(|_| refused(400, "the body is not an event_sync payload (room_name is required)"))?;
    let session = match (kind, what) {
        ("room", "created") | ("occupant", "left") => None,
        ("occupant", "joined") => {
            let joined =
                at(payload.occupant.as_ref().and_then(|o| o.joined_at), "occupant.joined_at: seconds since the epoch")?;
            Some(SessionEvent::OccupantJoined(joined.unwrap_or(now)))
        }
        ("room", "destroyed") => Some(SessionEvent::RoomDestroyed(
            at(payload.destroyed_at, "destroyed_at: seconds since the epoch")?.unwrap_or(now),
        )),
        _ => return Err(refused(404, "no such event")),
    };
    at(payload.created_at, "created_at: seconds since the epoch")?;
    Ok(SyncEvent { room_name: payload.room_name.to_lowercase(), session })
}

/// A mod_reservations `POST /conference` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The conference (Jitsi room) name, as sent.
    pub name: String,
    pub start: DateTime<Utc>,
    pub mail_owner: String,
}

/// Longest `mail_owner` kept.
pub const MAX_MAIL_OWNER: usize = 512;

/// Parses mod_reservations' form body; no `start_time` means `now`.
pub fn reservation(body: &[u8], now: DateTime<Utc>) -> Result<Reservation, Refused> {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let name = form.get("name").filter(|n| !n.is_empty()).ok_or(refused(400, "name is required"))?;
    let start = match form.get("start_time").filter(|s| !s.is_empty()) {
        None => now,
        Some(raw) => DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| refused(400, "start_time: yyyy-MM-ddTHH:mm:ss.SSSZ"))?,
    };
    let mail_owner = form.get("mail_owner").cloned().unwrap_or_default();
    if mail_owner.len() > MAX_MAIL_OWNER {
        return Err(refused(400, "mail_owner is too long"));
    }
    Ok(Reservation { name: name.clone(), start, mail_owner })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
    }

    #[test]
    fn event_sync_posts_become_session_events() {
        let joined =
            event_sync("occupant", "joined", br#"{"room_name":"VC-Ab","occupant":{"joined_at":1795000000}}"#, now());
        assert_eq!(
            joined,
            Ok(SyncEvent {
                room_name: "vc-ab".into(),
                session: Some(SessionEvent::OccupantJoined(Utc.timestamp_opt(1_795_000_000, 0).unwrap()))
            })
        );
        let destroyed = event_sync("room", "destroyed", br#"{"room_name":"r"}"#, now()).unwrap();
        assert_eq!(destroyed.session, Some(SessionEvent::RoomDestroyed(now())));
        assert_eq!(event_sync("room", "created", br#"{"room_name":"r","x":1}"#, now()).unwrap().session, None);
    }

    #[test]
    fn event_sync_refusals_name_the_field() {
        assert_eq!(event_sync("room", "created", b"{}", now()).unwrap_err().status, 400);
        assert_eq!(event_sync("room", "renamed", br#"{"room_name":"r"}"#, now()).unwrap_err().status, 404);
        for bad in [r#"-1"#, "1e300", "1e11"] {
            let body = format!(r#"{{"room_name":"r","occupant":{{"joined_at":{bad}}}}}"#);
            let e = event_sync("occupant", "joined", body.as_bytes(), now()).unwrap_err();
            assert_eq!((e.status, e.detail), (400, "occupant.joined_at: seconds since the epoch"));
        }
        let e = event_sync("room", "created", br#"{"room_name":"r","created_at":-5}"#, now()).unwrap_err();
        assert_eq!(e.detail, "created_at: seconds since the epoch");
    }

    #[test]
    fn reservations_parse_mod_reservations_form() {
        let r = reservation(b"name=vc-ab&start_time=2026-11-24T09%3A55%3A00.000Z&mail_owner=u%40x", now()).unwrap();
        assert_eq!(r.name, "vc-ab");
        assert_eq!(r.start, Utc.with_ymd_and_hms(2026, 11, 24, 9, 55, 0).unwrap());
        assert_eq!(r.mail_owner, "u@x");
        assert_eq!(reservation(b"name=vc-ab", now()).unwrap().start, now());
        assert_eq!(reservation(b"start_time=x", now()).unwrap_err().detail, "name is required");
        assert_eq!(reservation(b"name=a&start_time=tomorrow", now()).unwrap_err().status, 400);
        let long = format!("name=a&mail_owner={}", "m".repeat(MAX_MAIL_OWNER + 1));
        assert_eq!(reservation(long.as_bytes(), now()).unwrap_err().detail, "mail_owner is too long");
    }
}
