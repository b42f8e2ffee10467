//! POST /v1/communication/notifications bodies: parse, every rule, and the
//! templates rendered with whatever variables got through.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcare_domain::notification::{Channel, Message, NotificationRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<NotificationRequest>(data) else { return };
    let now = chrono::Utc::now();
    let Ok(valid) = request.validate(now, |tz| tz.parse::<chrono_tz::Tz>().is_ok(), &Default::default()) else { return };
    if let Message::Template { name, variables, .. } = &valid.message {
        for channel in [Channel::Sms, Channel::Email, Channel::Push] {
            let _ = vcare_domain::templates::render_named(name, valid.recipient.locale.as_deref(), channel, variables);
        }
    }
});
