//! What a clinic's endpoint is sent: the CloudEvent as published, minus
//! anything personal — the people in it (ids included: an endpoint outside
//! the clinic's records needs the room or notification, not who), and any
//! address or text. The envelope stays whole, so the receiver can
//! de-duplicate by `id` and order by `time`.

use serde_json::Value;

/// Keys dropped wherever they stand in `data`.
const PERSONAL: &[&str] = &[
    "userId",
    "userIds",
    "participants",
    "admittedBy",
    "displayName",
    "name",
    "phone",
    "email",
    "address",
    "recipient",
    "from",
    "to",
    "text",
    "body",
    "message",
];

/// The event as an endpoint receives it.
pub fn payload(event: &Value) -> Value {
    let mut out = event.clone();
    if let Some(data) = out.get_mut("data") {
        scrub(data);
    }
    out
}

fn scrub(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !PERSONAL.contains(&k.as_str()));
            map.values_mut().for_each(scrub);
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn people_leave_the_payload_and_the_envelope_stays() {
        let event = json!({
            "specversion": "1.0", "id": "e1", "type": "virtual_care.room.created", "time": "2026-12-07T10:00:00Z",
            "subject": "rm_1", "clinicid": "c1",
            "data": {"roomId": "rm_1", "appointmentId": "apt-1", "status": "scheduled",
                     "participants": [{"userId": "u-pat", "role": "patient"}],
                     "nested": [{"userId": "u-doc", "phone": "+93701234567", "kept": 1}]}
        });
        let p = payload(&event);
        assert_eq!(p["id"], "e1");
        assert_eq!(p["data"]["roomId"], "rm_1");
        assert_eq!(p["data"]["nested"][0]["kept"], 1);
        let text = p.to_string();
        for gone in ["u-pat", "u-doc", "+93701234567", "participants"] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
    }
}
