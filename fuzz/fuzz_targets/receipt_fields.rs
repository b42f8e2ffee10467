//! What providers and settings hand over as text: receipt references
//! (`clinic~ntf~att`), each provider's status words, quiet hours and
//! reminder windows per clinic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcare_domain::clinic::{PerClinic, QuietHours, ReminderWindows};
use vcare_domain::receipt::{ReceiptRef, gateway_status, twilio_status, vonage_status};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = ReceiptRef::parse(text);
    let _ = (twilio_status(text), vonage_status(text), gateway_status(text));
    let _ = PerClinic::parse(QuietHours::default(), text);
    let _ = text.parse::<ReminderWindows>();
});
