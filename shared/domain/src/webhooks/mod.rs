//! Outbound webhooks (issue 22), pure: the Standard Webhooks signature, the
//! rules an endpoint's URL and every address it resolves to must meet
//! (SSRF), and when a failed delivery is tried again.

pub mod address;
pub mod delivery;
pub mod endpoint;
pub mod payload;
pub mod retry;
pub mod signature;

pub use address::{AddressRefusal, UrlRefusal, check_address, check_url};
pub use payload::payload;
pub use retry::{RETRY_DELAYS, next_attempt};
pub use signature::{Secret, sign};
