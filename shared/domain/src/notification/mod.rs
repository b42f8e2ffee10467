//! Notifications (API.md "Communication"): channels and priorities, what a
//! valid request is (`request`), the delivery status order, the stored
//! notification and its attempts (`stored`), the routes and quiet hours
//! dispatch follows (`routes`), and how a recipient is shown masked
//! (`masked`).

mod masked;
mod request;
mod routes;
mod stored;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use masked::*;
pub use request::*;
pub use routes::*;
pub use stored::*;

pub const MAX_BODY_CHARS: usize = 4000;
pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_VARIABLES: usize = 50;
pub const MAX_VARIABLE_CHARS: usize = 1000;
pub const MAX_PUSH_TOKENS: usize = 10;
pub const MAX_PUSH_TOKEN_CHARS: usize = 4096;
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Push,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Push => "push",
            Self::Email => "email",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    #[default]
    Normal,
    High,
}

/// Delivery status. Ranks only move forward; terminal states stay, except
/// that a late `delivered` may replace `expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Expired,
    /// Final: every channel of the request was opted out or suppressed.
    Suppressed,
    /// An attempt's only: its channel was opted out or suppressed, so no
    /// provider was called.
    Skipped,
}

impl Status {
    pub fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Sending => 1,
            Self::Sent => 2,
            Self::Delivered | Self::Undelivered | Self::Failed | Self::Expired | Self::Suppressed | Self::Skipped => 3,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.rank() == 3
    }

    pub fn may_become(self, next: Self) -> bool {
        next.rank() > self.rank() || (self == Self::Expired && next == Self::Delivered)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Suppressed => "suppressed",
            Self::Skipped => "skipped",
        }
    }
}

/// The dispatch queue's message: ids only, never personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DispatchMessage {
    pub clinic_id: String,
    pub notification_id: String,
}
