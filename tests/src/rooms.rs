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

/// The outbox's events of `kind` about the room `room_id`, each checked
/// against the event catalogue.
pub async fn room_events(stack: &TestStack, room_id: &str, kind: &str) -> Vec<Value> {
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let items = ddb.scan().table_name(table).send().await.unwrap().items.unwrap_or_default();
    items
        .iter()
        .filter(|i| i.get("kind").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("outbox"))
        .map(|i| serde_json::from_str::<Value>(i["event"].as_s().unwrap()).unwrap())
        .filter(|e| e["type"] == kind && e["subject"] == room_id)
        .inspect(|e| crate::catalogue::validate(e).unwrap_or_else(|err| panic!("{err}")))
        .collect()
}

/// The room's kept failure to end its meeting (`JITSI_END`), as stored:
/// `{"attempts", "error"}`, or `None`.
pub async fn pending_end(stack: &TestStack, clinic: &str, room_id: &str) -> Option<Value> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let item = ddb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("ROOM#{clinic}#{room_id}")))
        .key("sk", AttributeValue::S("JITSI_END".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item?;
    let attempts = item.get("attempts").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u32>().ok());
    Some(json!({"attempts": attempts, "error": item["error"].as_s().unwrap()}))
}
