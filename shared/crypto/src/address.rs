//! Keyed hashes of addresses (phone numbers, e-mail addresses): what the
//! suppression list and the reply index are keyed by, so neither ever
//! holds an address in clear, and nobody without the key can test a
//! number against them.
//!
//! The hash key is derived once per container from the KMS HMAC key
//! (`GenerateMac` over a fixed label, deterministic for the key), so every
//! container hashes alike and KMS is called once, not per address.

use std::sync::Mutex;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{CryptoError, KmsMac};

const LABEL: &str = "vcare:address-hash:v1";

pub struct AddressHasher {
    mac: KmsMac,
    key: Mutex<Option<hmac::Key>>,
}

impl std::fmt::Debug for AddressHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressHasher").finish_non_exhaustive()
    }
}

/// An address as it is hashed: trimmed; e-mail addresses in lower case.
pub fn normalise_address(channel: &str, address: &str) -> String {
    let a = address.trim();
    if channel == "email" { a.to_lowercase() } else { a.to_owned() }
}

impl AddressHasher {
    pub fn new(mac: KmsMac) -> Self {
        Self { mac, key: Mutex::new(None) }
    }

    /// The keyed hash of `address` on `channel` (`sms`, `email`),
    /// base64url: the same for every container and clinic.
    pub async fn hash(&self, channel: &str, address: &str) -> Result<String, CryptoError> {
        let key = self.key().await?;
        let message = format!("{channel}:{}", normalise_address(channel, address));
        Ok(URL_SAFE_NO_PAD.encode(hmac::sign(&key, message.as_bytes()).as_ref()))
    }

    async fn key(&self) -> Result<hmac::Key, CryptoError> {
        if let Some(k) = self.key.lock().map_err(|_| CryptoError::Invalid)?.as_ref() {
            return Ok(k.clone());
        }
        let derived = URL_SAFE_NO_PAD.decode(self.mac.sign(LABEL).await?).map_err(|_| CryptoError::Invalid)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &derived);
        *self.key.lock().map_err(|_| CryptoError::Invalid)? = Some(key.clone());
        Ok(key)
    }
}
