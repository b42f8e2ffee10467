//! Domain events (API.md): CloudEvents 1.0, written to the outbox in the same
//! transaction as the state change they report. `data` carries ids, times and
//! states — never names, phone numbers, e-mail addresses or tokens.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::room::Room;

pub const ROOM_CREATED: &str = "virtual_care.room.created";
pub const TOKEN_ISSUED: &str = "virtual_care.token.issued";
pub const CONSULTATION_STARTED: &str = "virtual_care.consultation.started";
pub const CONSULTATION_ENDED: &str = "virtual_care.consultation.ended";
pub const ROOM_CANCELLED: &str = "virtual_care.room.cancelled";
pub const ISSUE_REPORTED: &str = "virtual_care.technical_issue.reported";
pub const IMAGE_SHARED: &str = "virtual_care.image.shared";
pub const PATIENT_WAITING: &str = "virtual_care.patient.waiting";
pub const PATIENT_ADMITTED: &str = "virtual_care.patient.admitted";
pub const RECORDING_READY: &str = "virtual_care.recording.ready";
pub const RECORDING_DELETED: &str = "virtual_care.recording.deleted";
pub const RECORDING_FAILED: &str = "virtual_care.recording.failed";
pub const NOTIFICATION_ACCEPTED: &str = "communication.notification.accepted";
pub const NOTIFICATION_SENT: &str = "communication.notification.sent";
pub const NOTIFICATION_DELIVERED: &str = "communication.notification.delivered";
pub const NOTIFICATION_FAILED: &str = "communication.notification.failed";
pub const NOTIFICATION_SUPPRESSED: &str = "communication.notification.suppressed";
pub const APPOINTMENT_CONFIRMED: &str = "communication.appointment.confirmed";
pub const APPOINTMENT_RESCHEDULE_REQUESTED: &str = "communication.appointment.reschedule_requested";
pub const APPOINTMENT_CANCEL_REQUESTED: &str = "communication.appointment.cancel_requested";
pub const REPLY_RECEIVED: &str = "communication.reply.received";
pub const WEBHOOK_ENDPOINT_DISABLED: &str = "communication.webhook.endpoint_disabled";

#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    /// Stable: the same on every redelivery.
    pub id: String,
    pub kind: &'static str,
    pub clinic_id: String,
    /// The aggregate (room, notification) whose events are ordered.
    pub aggregate_id: String,
    pub time: DateTime<Utc>,
    pub data: Value,
}

impl DomainEvent {
    pub fn new(kind: &'static str, clinic_id: &str, aggregate_id: &str, time: DateTime<Utc>, data: Value) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            clinic_id: clinic_id.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            time,
            data,
        }
    }

    /// An event whose id is derived from `key`: the same fact reported twice
    /// (a repeated receipt, a sweep re-applying one) is the same event.
    pub fn stable(
        kind: &'static str,
        clinic_id: &str,
        aggregate_id: &str,
        key: &str,
        time: DateTime<Utc>,
        data: Value,
    ) -> Self {
        let digest = crate::digest::sha256(format!("{kind}\n{key}").as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self {
            id: uuid::Builder::from_sha1_bytes(bytes).into_uuid().to_string(),
            ..Self::new(kind, clinic_id, aggregate_id, time, data)
        }
    }

    /// A room event whose data is the room's state without personal data.
    pub fn about_room(kind: &'static str, room: &Room, time: DateTime<Utc>) -> Self {
        Self::new(kind, &room.clinic_id, &room.room_id, time, room_summary(room))
    }

    /// `virtual_care.token.issued`: who got a token for which room, with
    /// which grant and until when — never the token.
    pub fn token_issued(
        room: &Room,
        participant: &crate::room::Participant,
        moderator: bool,
        expires: DateTime<Utc>,
        time: DateTime<Utc>,
    ) -> Self {
        let data = json!({
            "roomId": room.room_id,
            "userId": participant.user_id,
            "role": participant.role.as_str(),
            "provider": room.provider.as_str(),
            "moderator": moderator,
            "expiresAt": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        Self::new(TOKEN_ISSUED, &room.clinic_id, &room.room_id, time, data)
    }

    pub fn source(&self) -> &'static str {
        if self.kind.starts_with("communication.") { "/vcare/communication" } else { "/vcare/virtual-care" }
    }

    pub fn to_cloud_event(&self) -> Value {
        json!({
            "specversion": "1.0",
            "id": self.id,
            "source": self.source(),
            "type": self.kind,
            "time": self.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "subject": self.aggregate_id,
            "datacontenttype": "application/json",
            "clinicid": self.clinic_id,
            "data": self.data,
        })
    }
}

/// A room as events show it: ids, roles, times and state; no display names.
pub fn room_summary(room: &Room) -> Value {
    json!({
        "roomId": room.room_id,
        "appointmentId": room.appointment_id,
        "status": room.status.as_str(),
        "provider": room.provider.as_str(),
        "scheduledStart": room.scheduled_start,
        "scheduledEnd": room.scheduled_end,
        "participants": room.participants.iter().map(|p| json!({"userId": p.user_id, "role": p.role})).collect::<Vec<_>>(),
        "startedAt": room.started_at,
        "endedAt": room.ended_at,
        "durationSeconds": room.duration_seconds,
    })
}
