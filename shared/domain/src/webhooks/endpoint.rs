//! A clinic's webhook endpoint (issue 22): where its systems want which
//! events, and the request that makes one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Rejected;
use crate::events::*;

/// Most event types one endpoint may name.
pub const MAX_EVENT_TYPES: usize = 30;

/// Every event type an endpoint may ask for (the catalogue's).
pub const EVENT_TYPES: &[&str] = &[
    ROOM_CREATED,
    TOKEN_ISSUED,
    CONSULTATION_STARTED,
    CONSULTATION_ENDED,
    ROOM_CANCELLED,
    ISSUE_REPORTED,
    IMAGE_SHARED,
    PATIENT_WAITING,
    PATIENT_ADMITTED,
    RECORDING_READY,
    RECORDING_DELETED,
    RECORDING_FAILED,
    NOTIFICATION_ACCEPTED,
    NOTIFICATION_SENT,
    NOTIFICATION_DELIVERED,
    NOTIFICATION_FAILED,
    NOTIFICATION_SUPPRESSED,
    APPOINTMENT_CONFIRMED,
    APPOINTMENT_RESCHEDULE_REQUESTED,
    APPOINTMENT_CANCEL_REQUESTED,
    REPLY_RECEIVED,
    WEBHOOK_ENDPOINT_DISABLED,
];

/// An endpoint as kept. The secret only sealed (KMS, purpose
/// `webhook-secret`); shown to the clinic once, when made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub endpoint_id: String,
    pub clinic_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub sealed_secret: String,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
}

impl Endpoint {
    /// Whether an event of `kind` goes to it now.
    pub fn wants(&self, kind: &str) -> bool {
        self.enabled && self.event_types.iter().any(|t| t == kind)
    }

    /// As the API shows it: never the secret.
    pub fn view(&self) -> Value {
        json!({
            "endpointId": self.endpoint_id,
            "url": self.url,
            "eventTypes": self.event_types,
            "enabled": self.enabled,
            "disabledReason": self.disabled_reason,
            "createdAt": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }
}

/// `POST /v1/webhooks/endpoints`'s body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointRequest {
    pub url: String,
    pub event_types: Vec<String>,
}

impl EndpointRequest {
    /// The URL's form (not yet where it resolves) and the event types:
    /// known, at least one, at most [`MAX_EVENT_TYPES`], each once.
    pub fn validate(self, plain_http: bool) -> Result<(String, Vec<String>), Rejected> {
        let bad = |d: &str| Rejected::Invalid(d.to_owned());
        super::check_url(&self.url, plain_http).map_err(|r| bad(r.describe()))?;
        if self.event_types.is_empty() || self.event_types.len() > MAX_EVENT_TYPES {
            return Err(bad("eventTypes: 1 to 30 event types"));
        }
        let mut types = Vec::new();
        for t in self.event_types {
            if !EVENT_TYPES.contains(&t.as_str()) {
                return Err(bad("eventTypes: an event type of the catalogue (events/catalogue)"));
            }
            if !types.contains(&t) {
                types.push(t);
            }
        }
        Ok((self.url, types))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, types: &[&str]) -> EndpointRequest {
        EndpointRequest { url: url.into(), event_types: types.iter().map(|t| t.to_string()).collect() }
    }

    #[test]
    fn requests_name_an_https_url_and_known_event_types() {
        let (url, types) = request("https://ehr.example/hook", &[ROOM_CREATED, ROOM_CREATED, CONSULTATION_ENDED])
            .validate(false)
            .unwrap();
        assert_eq!((url.as_str(), types.len()), ("https://ehr.example/hook", 2), "each type once");
        for (url, types) in [
            ("http://ehr.example/hook", vec![ROOM_CREATED]),
            ("https://ehr.example/hook", vec![]),
            ("https://ehr.example/hook", vec!["virtual_care.room.exploded"]),
            ("https://ehr.example/hook", vec![ROOM_CREATED; 31]),
        ] {
            assert!(matches!(request(url, &types).validate(false), Err(Rejected::Invalid(_))), "{url} {types:?}");
        }
        assert!(request("http://127.0.0.1:9/hook", &[ROOM_CREATED]).validate(true).is_ok());
    }
}
