//! What LiveKit posts to the OpenVidu webhook once its signature holds:
//! protojson with int64 as strings, participant and room events, and the
//! egress events whose `egressInfo` settles a recording.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcare_domain::video::egress::{EgressInfo, MAX_ERROR_CHARS};
use vcare_domain::video::livekit::webhook;

fn check(info: &EgressInfo) {
    assert!(!info.egress_id.is_empty() && info.egress_id.len() <= 64);
    if let Some(e) = &info.error {
        assert!(!e.is_empty() && e.chars().count() <= MAX_ERROR_CHARS && !e.chars().any(char::is_control));
    }
}

fuzz_target!(|data: &[u8]| {
    match webhook(data, chrono::Utc::now()) {
        Ok(hook) => {
            if let Some(info) = &hook.egress {
                check(info);
            }
            assert!(hook.room_name.as_ref().is_none_or(|n| *n == n.to_lowercase()));
        }
        Err(refused) => assert!(refused.status == 400 || refused.status == 413),
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(info) = EgressInfo::parse(&value)
    {
        check(&info);
    }
});
