//! An outbound HTTPS client made on first use. Making one loads the
//! platform's trust roots, several milliseconds that a cold start whose
//! function may never call out (token-issue for a prepared room, the
//! webhook receivers) should not pay. Clones share the one client;
//! timeouts are per request.

use std::sync::{Arc, OnceLock};

#[derive(Clone, Default)]
pub struct LazyClient {
    cell: Arc<OnceLock<Result<reqwest::Client, String>>>,
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LazyClient({})", if self.cell.get().is_some() { "made" } else { "not yet made" })
    }
}

impl LazyClient {
    pub fn new() -> Self {
        Self::default()
    }

    /// The client, made now if this is the first use. `Err` only when the
    /// TLS stack cannot start, said without a panic.
    pub fn get(&self) -> Result<&reqwest::Client, &str> {
        self.cell
            .get_or_init(|| reqwest::Client::builder().build().map_err(|e| format!("no HTTP client: {e}")))
            .as_ref()
            .map_err(String::as_str)
    }

    /// Whether the client has been made (for tests of the cold start).
    pub fn is_made(&self) -> bool {
        self.cell.get().is_some()
    }
}

/// What kind of failure an exchange met, never its URL (which may carry
/// an identifier): for logs, problems and delivery logs.
pub fn failure(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "no connection"
    } else {
        "the exchange broke"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_made_on_first_use_and_shared_by_clones() {
        let lazy = LazyClient::new();
        let twin = lazy.clone();
        assert!(!lazy.is_made());
        assert!(twin.get().is_ok());
        assert!(lazy.is_made(), "a clone's use made the one client");
    }
}
