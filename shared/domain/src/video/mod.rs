//! Video providers: which one a room runs on (Jitsi or OpenVidu 3, which
//! speaks LiveKit's API), and LiveKit's rules as pure functions — the
//! participant and server tokens' claims and what a webhook means for a
//! consultation's session.

pub mod egress;
pub mod livekit;

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The video provider a room runs on. Rooms stored before there was a
/// choice are Jitsi's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    #[default]
    Jitsi,
    Openvidu,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 2] = [ProviderKind::Jitsi, ProviderKind::Openvidu];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jitsi => "jitsi",
            Self::Openvidu => "openvidu",
        }
    }
}

impl FromStr for ProviderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim()).ok_or_else(|| "jitsi or openvidu".to_owned())
    }
}

#[cfg(test)]
mod tests;
