//! Push providers.

mod apns;
mod fcm;
mod webpush;

pub use apns::Apns;
pub use fcm::{FCM_SCOPE, Fcm};
pub use webpush::{WebPush, encrypt as webpush_encrypt};
