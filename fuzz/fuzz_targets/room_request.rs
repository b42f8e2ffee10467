//! POST /v1/virtual-care/rooms bodies: parse and every rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcare_domain::room::CreateRoom;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<CreateRoom>(data) else { return };
    if let Ok(room) = request.validate() {
        let _ = room.fingerprint();
    }
});
