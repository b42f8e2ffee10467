//! Appointment events from the scheduling system: the envelope, then a
//! created appointment's room request and recipients.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcare_domain::appointment::{AppointmentCreated, AppointmentEvent, local_when};

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<AppointmentEvent>(data) else { return };
    let Ok(created) = serde_json::from_value::<AppointmentCreated>(event.data) else { return };
    let _ = created.room_request().validate();
    for r in created.recipients() {
        let _ = local_when(chrono::Utc::now(), r.timezone.as_deref());
    }
});
