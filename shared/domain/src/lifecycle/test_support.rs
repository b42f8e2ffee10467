//! Fixtures of the lifecycle's tests.

use super::*;
use crate::notification::{Attempt, MaskedRecipient, Priority};

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn notification(status: Status) -> Notification {
    Notification {
        notification_id: "ntf-1".into(),
        clinic_id: "c-1".into(),
        status,
        channels: vec![Channel::Sms, Channel::Email],
        priority: Priority::High,
        send_at: None,
        created_at: at("2026-12-01T10:00:00Z"),
        updated_at: at("2026-12-01T10:00:00Z"),
        channel: None,
        provider: None,
        attempts: Vec::new(),
        recipient: MaskedRecipient::default(),
        timezone: None,
        sealed_recipient: String::new(),
        sealed_messages: String::new(),
        delivery: Default::default(),
        awaiting_receipt_since: None,
        reconcile_at: None,
        category: "general".into(),
        address_hashes: Default::default(),
        replies: Vec::new(),
        context: None,
        template: None,
    }
}

pub fn attempt(provider: &str, status: Status, when: &str, permanent: bool) -> Attempt {
    Attempt {
        attempt_id: format!("att-{provider}-{when}"),
        channel: if provider == "ses" { Channel::Email } else { Channel::Sms },
        provider: provider.into(),
        status,
        at: at(when),
        error: None,
        provider_message_id: None,
        permanent,
        ends_channel: false,
    }
}

pub const ROUTES: &[(Channel, &str)] = &[(Channel::Sms, "gateway"), (Channel::Sms, "twilio"), (Channel::Email, "ses")];

pub fn settings() -> DispatchSettings {
    DispatchSettings {
        claim_timeout: Duration::seconds(120),
        max_tries: 2,
        quiet_hours: QuietHours::NONE,
        retry_base: std::time::Duration::from_secs(2),
    }
}
