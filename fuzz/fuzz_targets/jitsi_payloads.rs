//! What Prosody posts: event_sync's JSON for each event path (the first
//! byte picks the path, unknown ones included) and mod_reservations' form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcare_domain::jitsi::{MAX_MAIL_OWNER, event_sync, reservation};

const PATHS: [(&str, &str); 5] =
    [("room", "created"), ("room", "destroyed"), ("occupant", "joined"), ("occupant", "left"), ("room", "moved")];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let (kind, what) = PATHS[pick as usize % PATHS.len()];
    let now = chrono::Utc::now();
    match event_sync(kind, what, body, now) {
        Ok(sync) => assert_eq!(sync.room_name, sync.room_name.to_lowercase()),
        Err(refused) => assert!(refused.status == 400 || (refused.status == 404 && what == "moved")),
    }
    if let Ok(r) = reservation(body, now) {
        assert!(!r.name.is_empty() && r.mail_owner.len() <= MAX_MAIL_OWNER);
    }
});
