//! FHIR R4 for the interop service (issue 21): what vcare knows of a
//! notification becomes a `Communication`, a consultation an `Encounter`.
//! Pure: built from the state of record (never from an event's data, so a
//! late or replayed event writes the newest state, not its own), and never
//! the payload — no message text, no address, no name (minimum necessary).
//!
//! | vcare | FHIR R4 |
//! |---|---|
//! | notification id | `Communication.identifier` `urn:vcare:notification` |
//! | queued / sending / sent / delivered | `preparation` / `in-progress` / `completed` (`sent`) / `completed` (`received`) |
//! | undelivered / failed / suppressed | `not-done`, `statusReason` the vcare status |
//! | expired (no receipt in time) | `unknown` |
//! | room id | `Encounter.identifier` `urn:vcare:room`, class `VR` |
//! | scheduled / active / ended / cancelled | `planned` / `in-progress` / `finished` / `cancelled` |

use serde_json::{Value, json};

use crate::notification::{Channel, Notification, Status};
use crate::room::{ParticipantRole, Room, RoomStatus};

pub const NOTIFICATION_SYSTEM: &str = "urn:vcare:notification";
pub const ROOM_SYSTEM: &str = "urn:vcare:room";
const VCARE_STATUS: &str = "urn:vcare:notification-status";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/communication-category";
const MODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";

/// Which FHIR resource an event is about, by its type and subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A notification's `Communication`.
    Communication { notification_id: String },
    /// A room's `Encounter`.
    Encounter { room_id: String },
}

impl Target {
    /// The resource a domain event of `kind` about `subject` changes; `None`
    /// for events FHIR does not hear of.
    pub fn of(kind: &str, subject: &str) -> Option<Self> {
        if subject.is_empty() || subject.len() > 128 {
            return None;
        }
        if is_synced(kind) && kind.starts_with("communication.notification.") {
            Some(Self::Communication { notification_id: subject.to_owned() })
        } else if is_synced(kind) {
            Some(Self::Encounter { room_id: subject.to_owned() })
        } else {
            None
        }
    }

    pub fn resource_type(&self) -> &'static str {
        match self {
            Self::Communication { .. } => "Communication",
            Self::Encounter { .. } => "Encounter",
        }
    }

    /// `system|value`, as a conditional update's `identifier` names it.
    pub fn identifier(&self) -> String {
        match self {
            Self::Communication { notification_id } => format!("{NOTIFICATION_SYSTEM}|{notification_id}"),
            Self::Encounter { room_id } => format!("{ROOM_SYSTEM}|{room_id}"),
        }
    }
}

/// The domain event types the FHIR sync hears of (its subscription's
/// filter policy in the template names these; tests/tests/fhir.rs checks).
pub const SYNCED: &[&str] = &[
    "communication.notification.accepted",
    "communication.notification.sent",
    "communication.notification.delivered",
    "communication.notification.failed",
    "communication.notification.suppressed",
    "virtual_care.room.created",
    "virtual_care.room.cancelled",
    "virtual_care.consultation.started",
    "virtual_care.consultation.ended",
];

pub fn is_synced(kind: &str) -> bool {
    SYNCED.contains(&kind)
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn coding(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

/// A notification's outcome as a `Communication`.
pub fn communication(n: &Notification) -> Value {
    let (status, reason) = match n.status {
        Status::Queued => ("preparation", None),
        Status::Sending => ("in-progress", None),
        Status::Sent | Status::Delivered => ("completed", None),
        Status::Expired => ("unknown", Some("expired")),
        Status::Undelivered | Status::Failed | Status::Suppressed | Status::Skipped => {
            ("not-done", Some(n.status.as_str()))
        }
    };
    let category = if n.category.contains("remind") { "reminder" } else { "notification" };
    let mut c = json!({
        "resourceType": "Communication",
        "identifier": [{"system": NOTIFICATION_SYSTEM, "value": n.notification_id}],
        "status": status,
        "category": [{"coding": [{"system": CATEGORY, "code": category}], "text": n.category}],
    });
    if let Some(reason) = reason {
        c["statusReason"] = coding(VCARE_STATUS, reason);
    }
    if let Some(channel) = n.channel {
        let mode = match channel {
            Channel::Sms => "WRITTEN",
            Channel::Push => "ONLINEWRIT",
            Channel::Email => "EMAILWRIT",
        };
        c["medium"] = json!([{"coding": [{"system": MODE, "code": mode}], "text": channel.as_str()}]);
    }
    if let Some(user) = &n.recipient.user_id {
        c["subject"] = json!({"reference": format!("Patient/{user}")});
        c["recipient"] = json!([{"reference": format!("Patient/{user}")}]);
    }
    let sent = n.attempts.iter().filter(|a| a.status.rank() >= Status::Sent.rank() && a.status != Status::Skipped);
    if let Some(first) = sent.map(|a| a.at).min() {
        c["sent"] = json!(time(first));
    }
    if n.status == Status::Delivered {
        let received = n.delivery.values().filter(|d| d.status == Status::Delivered).map(|d| d.at).min();
        c["received"] = json!(time(received.unwrap_or(n.updated_at)));
    }
    if let Some(context) = &n.context {
        if let Some(appointment) = &context.appointment_id {
            c["about"] = json!([{"reference": format!("Appointment/{appointment}")}]);
        }
        if let Some(room) = &context.room_id {
            c["encounter"] = json!({"identifier": {"system": ROOM_SYSTEM, "value": room}});
        }
    }
    c
}

/// A consultation as an `Encounter` (class `VR`, virtual).
pub fn encounter(room: &Room) -> Value {
    let status = match room.status {
        RoomStatus::Scheduled => "planned",
        RoomStatus::Active => "in-progress",
        RoomStatus::Ended => "finished",
        RoomStatus::Cancelled => "cancelled",
    };
    let mut e = json!({
        "resourceType": "Encounter",
        "identifier": [{"system": ROOM_SYSTEM, "value": room.room_id}],
        "status": status,
        "class": {"system": ACT_CODE, "code": "VR", "display": "virtual"},
        "appointment": [{"reference": format!("Appointment/{}", room.plan.appointment_id)}],
    });
    let participants = &room.plan.participants;
    if let Some(patient) = participants.iter().find(|p| p.role == ParticipantRole::Patient) {
        e["subject"] = json!({"reference": format!("Patient/{}", patient.user_id)});
    }
    let clinicians: Vec<Value> = participants
        .iter()
        .filter_map(|p| {
            let kind = match p.role {
                ParticipantRole::Doctor => "PPRF",
                ParticipantRole::Nurse => "PART",
                ParticipantRole::Interpreter => "TRANS",
                ParticipantRole::Patient => return None,
            };
            Some(json!({"type": [coding(PARTICIPATION, kind)], "individual": {"reference": format!("Practitioner/{}", p.user_id)}}))
        })
        .collect();
    if !clinicians.is_empty() {
        e["participant"] = Value::Array(clinicians);
    }
    if let Some(start) = room.started_at {
        e["period"] = json!({"start": time(start)});
        if let Some(end) = room.ended_at {
            e["period"]["end"] = json!(time(end));
            let minutes = (end - start).num_seconds().max(0) as f64 / 60.0;
            e["length"] = json!({"value": (minutes * 10.0).round() / 10.0, "unit": "min", "system": "http://unitsofmeasure.org", "code": "min"});
        }
    }
    e
}

/// What a FHIR server's answer to a write means for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Done,
    /// The version changed between the read and the write: read again.
    Stale,
    /// The server could not now (5xx, 429, no answer): the queue retries.
    Retry,
    /// The server refused the resource (another 4xx): retrying repeats it,
    /// so it is dead-lettered with the reason.
    Refused,
}

pub fn answer(status: u16) -> Answer {
    match status {
        200..=299 => Answer::Done,
        409 | 412 => Answer::Stale,
        408 | 429 | 500..=599 => Answer::Retry,
        _ => Answer::Refused,
    }
}

#[cfg(test)]
mod tests;
