//! SMS providers.

mod gateway;
mod twilio;
mod vonage;

pub use gateway::GatewaySms;
pub use twilio::Twilio;
pub use vonage::Vonage;
