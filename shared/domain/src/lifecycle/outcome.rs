//! What a provider said of one send, and what a send to several push
//! tokens comes to.

use std::time::Duration;

/// A provider's answer to one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent {
        provider_message_id: String,
    },
    /// Worth trying again (a 5xx, a timeout, a rate limit), after
    /// `retry_after` when the provider said so.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The provider will say the same again (a bad number, a refused key).
    Permanent {
        reason: String,
    },
    /// The push token is dead (unregistered, invalid): drop it.
    DeadToken {
        reason: String,
    },
    /// A refusal that concerns the recipient, not the provider (opted out,
    /// an invalid or non-mobile number, barred): no provider of the channel
    /// is tried again for this notification. `suppress`: the recipient
    /// opted out at the provider (Twilio 21610).
    Refused {
        reason: String,
        suppress: bool,
    },
}

impl SendOutcome {
    pub fn is_sent(&self) -> bool {
        matches!(self, Self::Sent { .. })
    }

    /// Why it failed; `None` when it was sent.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Sent { .. } => None,
            Self::Transient { reason, .. }
            | Self::Permanent { reason }
            | Self::DeadToken { reason }
            | Self::Refused { reason, .. } => Some(reason),
        }
    }

    /// A failure that trying again cannot mend.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent { .. } | Self::DeadToken { .. } | Self::Refused { .. })
    }

    /// A refusal that ends the channel, not only the provider.
    pub fn ends_channel(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }
}

/// One send to every address of a route (a recipient may have several push
/// tokens of one platform) comes to: sent if any took it, else transient if
/// any may take it later, else a refusal of the recipient, else permanent
/// (every token dead is permanent).
pub fn combine(provider: &str, outcomes: &[SendOutcome]) -> SendOutcome {
    let first = |f: fn(&SendOutcome) -> bool| outcomes.iter().find(|o| f(o)).cloned();
    let transient = |o: &SendOutcome| matches!(o, SendOutcome::Transient { .. });
    first(SendOutcome::is_sent)
        .or_else(|| first(transient))
        .or_else(|| first(SendOutcome::ends_channel))
        .unwrap_or_else(|| {
            if !outcomes.is_empty() && outcomes.iter().all(|o| matches!(o, SendOutcome::DeadToken { .. })) {
                SendOutcome::Permanent { reason: format!("{provider}: every push token is dead") }
            } else {
                first(|o| matches!(o, SendOutcome::Permanent { .. }))
                    .unwrap_or(SendOutcome::Permanent { reason: format!("{provider}: refused") })
            }
        })
}

/// Exponential backoff for the `tries`-th transient failure of a route:
/// `base · 2^(tries-1)` (the exponent capped at 8) plus `jitter` (drawn by
/// the caller from `0..=base`), at least the provider's `retry_after`, at
/// most `cap` (the queue's longest delay).
pub fn backoff(
    base: Duration,
    tries: usize,
    retry_after: Option<Duration>,
    jitter: Duration,
    cap: Duration,
) -> Duration {
    let exp = base.saturating_mul(1 << tries.saturating_sub(1).min(8));
    (exp + jitter.min(base)).max(retry_after.unwrap_or_default()).min(cap)
}
