//! Rooms as the tests make them: one request body, one way to create it
//! through the gateway.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::TestStack;

/// The doctor every test room has.
pub fn doctor() -> Value {
    json!({"userId": "u-doc", "role": "doctor", "displayName": "Dr. Amini"})
}

/// The patient of most test rooms.
pub fn patient() -> Value {
    json!({"userId": "u-pat", "role": "patient", "displayName": "Zahra"})
}

/// A room request for `appointment`, 30 minutes from `start`.
pub fn room_body(appointment: &str, start: DateTime<Utc>, participants: &[Value]) -> Value {
    json!({
        "appointmentId": appointment,
        "scheduledStart": start.to_rfc3339(), "scheduledEnd": (start + Duration::minutes(30)).to_rfc3339(),
        "participants": participants,
    })
}

/// `POST /v1/virtual-care/rooms` as `token`: the status and the body.
pub async fn create_room(stack: &TestStack, token: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}/v1/virtual-care/rooms", stack.base);
    let (status, _, room) = stack.send(stack.http.post(url).bearer_auth(token).json(body)).await;
    (status, room)
}
