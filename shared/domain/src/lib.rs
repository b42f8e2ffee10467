//! vcare's rules, free of Lambda and AWS types ("parse, don't validate"):
//! a request body becomes a [`room::RoomPlan`] only if every rule holds.

pub mod appointment;
pub mod audit;
pub mod caller;
pub mod clinic;
pub mod consent;
pub mod dial_in;
pub mod digest;
pub mod due;
pub mod events;
pub mod fanout;
pub mod fhir;
pub mod ids;
pub mod jitsi;
pub mod lifecycle;
pub mod lobby;
pub mod notification;
pub mod push;
pub mod receipt;
pub mod recording;
pub mod recordings;
pub mod requests;
pub mod room;
pub mod room_records;
pub mod schedule;
pub mod sms;
pub mod templates;
pub mod video;
pub mod webhooks;

/// Why a request cannot be done. `Invalid` is a 400 (a field fails its rule),
/// `Impossible` a 422 (well-formed, but it cannot be).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Impossible(String),
}
