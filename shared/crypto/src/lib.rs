//! Envelope encryption of personal data (phone numbers, e-mail addresses,
//! push tokens, rendered message text).
//!
//! A KMS data key (AES-256, generated under the data key's KMS key with the
//! encryption context `vcare:purpose=pii`) encrypts records with AES-256-GCM.
//! The record's own context — tenant and record id — is the AEAD's
//! associated data, so a sealed value copied to another record or clinic
//! does not open. The plaintext data key is cached per container for at most
//! `max_uses` seals and `max_age`, so KMS is not called per record; opened
//! data keys are cached likewise (bounded), so reads do not call KMS either.
//!
//! Sealed form: `v1.<base64url(encrypted data key)>.<base64url(nonce ‖ ciphertext ‖ tag)>`.

mod address;
pub mod jws;

pub use address::{AddressHasher, normalise_address};

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub const PURPOSE: (&str, &str) = ("vcare:purpose", "pii");
const OPENED_KEYS_KEPT: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("KMS: {0}")]
    Kms(String),
    /// Tampered, truncated, or sealed for another record.
    #[error("sealed value does not open")]
    Invalid,
}

/// A plaintext data key, zeroed when dropped.
struct KeyBytes([u8; 32]);

impl Drop for KeyBytes {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: a valid, aligned, exclusive reference to a byte.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

struct DataKey {
    plain: KeyBytes,
    encrypted: Vec<u8>,
    uses: u32,
    created: Instant,
}

pub struct Envelope {
    kms: aws_sdk_kms::Client,
    key_id: String,
    max_uses: u32,
    max_age: Duration,
    current: Mutex<Option<DataKey>>,
    opened: Mutex<HashMap<Vec<u8>, (KeyBytes, Instant)>>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// The record a value belongs to: its tenant and id (and field), bound into
/// the ciphertext.
pub fn context(clinic: &str, record: &str, field: &str) -> String {
    format!("vcare:v1|clinic={clinic}|record={record}|field={field}")
}

fn kms_error<E: std::error::Error + Send + Sync + 'static>(e: aws_sdk_kms::error::SdkError<E>) -> CryptoError {
    CryptoError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string())
}

impl Envelope {
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>, max_uses: u32, max_age: Duration) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
            max_uses: max_uses.max(1),
            max_age,
            current: Mutex::new(None),
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// The current data key (plaintext copy and encrypted form), making a new
    /// one when the cached key is used up or too old.
    async fn data_key(&self) -> Result<([u8; 32], Vec<u8>), CryptoError> {
        {
            let mut current = self.current.lock().expect("lock");
            if let Some(k) = current.as_mut().filter(|k| k.uses < self.max_uses && k.created.elapsed() < self.max_age) {
                k.uses += 1;
                return Ok((k.plain.0, k.encrypted.clone()));
            }
        }
        let out = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .encryption_context(PURPOSE.0, PURPOSE.1)
            .send()
            .await
            .map_err(kms_error)?;
        let plain: [u8; 32] = out
            .plaintext
            .map(|b| b.into_inner())
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| CryptoError::Kms("data key is not 32 bytes".into()))?;
        let encrypted = out
            .ciphertext_blob
            .map(|b| b.into_inner())
            .ok_or_else(|| CryptoError::Kms("no encrypted data key".into()))?;
        *self.current.lock().expect("lock") =
            Some(DataKey { plain: KeyBytes(plain), encrypted: encrypted.clone(), uses: 1, created: Instant::now() });
        Ok((plain, encrypted))
    }

    pub async fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, CryptoError> {
        let (plain, encrypted) = self.data_key().await?;
        let key =
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KeyBytes(plain).0).map_err(|_| CryptoError::Invalid)?);
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| CryptoError::Invalid)?;
        let mut data = plaintext.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| CryptoError::Invalid)?;
        let mut body = nonce.to_vec();
        body.extend_from_slice(&data);
        Ok(format!("v1.{}.{}", URL_SAFE_NO_PAD.encode(encrypted), URL_SAFE_NO_PAD.encode(body)))
    }

    pub async fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, CryptoError> {
        let mut parts = sealed.split('.');
        let (Some("v1"), Some(edk), Some(body), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(CryptoError::Invalid);
        };
        let edk = URL_SAFE_NO_PAD.decode(edk).map_err(|_| CryptoError::Invalid)?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| CryptoError::Invalid)?;
        if body.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Invalid);
        }
        let plain = self.opened_key(&edk).await?;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &plain.0).map_err(|_| CryptoError::Invalid)?);
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Invalid)?;
        let mut data = ciphertext.to_vec();
        let opened =
            key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut data).map_err(|_| CryptoError::Invalid)?;
        Ok(opened.to_vec())
    }

    async fn opened_key(&self, edk: &[u8]) -> Result<KeyBytes, CryptoError> {
        if let Some((k, at)) = self.opened.lock().expect("lock").get(edk)
            && at.elapsed() < self.max_age
        {
            return Ok(KeyBytes(k.0));
        }
        let out = self
            .kms
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(edk))
            .encryption_context(PURPOSE.0, PURPOSE.1)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_invalid_ciphertext_exception()) {
                    CryptoError::Invalid
                } else {
                    kms_error(e)
                }
            })?;
        let plain: [u8; 32] =
            out.plaintext.map(|b| b.into_inner()).and_then(|v| v.try_into().ok()).ok_or(CryptoError::Invalid)?;
        let mut opened = self.opened.lock().expect("lock");
        if opened.len() >= OPENED_KEYS_KEPT {
            opened.retain(|_, (_, at)| at.elapsed() < self.max_age / 2);
            if opened.len() >= OPENED_KEYS_KEPT {
                opened.clear();
            }
        }
        opened.insert(edk.to_vec(), (KeyBytes(plain), Instant::now()));
        Ok(KeyBytes(plain))
    }
}

/// Encrypts a secret for a `...Ciphertext` setting: under `key_id`, with
/// the encryption context `vcare:purpose = purpose`, base64 — what
/// [`decrypt_secret`] takes.
pub async fn encrypt_secret(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    plaintext: &[u8],
    purpose: &str,
) -> Result<String, CryptoError> {
    use base64::engine::general_purpose::STANDARD;
    let out = kms
        .encrypt()
        .key_id(key_id)
        .plaintext(aws_sdk_kms::primitives::Blob::new(plaintext))
        .encryption_context(PURPOSE.0, purpose)
        .send()
        .await
        .map_err(kms_error)?;
    let blob = out.ciphertext_blob.ok_or_else(|| CryptoError::Kms("no ciphertext".into()))?;
    Ok(STANDARD.encode(blob.as_ref()))
}

/// Decrypts a secret (API keys, shared secrets) that was encrypted under KMS
/// with the encryption context `vcare:purpose = purpose`; a ciphertext made
/// for another purpose fails. Call once per container.
pub async fn decrypt_secret(
    kms: &aws_sdk_kms::Client,
    ciphertext_b64: &str,
    purpose: &str,
) -> Result<Vec<u8>, CryptoError> {
    use base64::engine::general_purpose::STANDARD;
    let blob = STANDARD
        .decode(ciphertext_b64.trim())
        .map_err(|_| CryptoError::Kms(format!("the {purpose} ciphertext is not base64")))?;
    let out = kms
        .decrypt()
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob))
        .encryption_context(PURPOSE.0, purpose)
        .send()
        .await
        .map_err(kms_error)?;
    let plain = out.plaintext.ok_or_else(|| CryptoError::Kms("no plaintext".into()))?.into_inner();
    if plain.is_empty() {
        return Err(CryptoError::Kms(format!("the {purpose} is empty")));
    }
    Ok(plain)
}

/// A KMS HMAC key (`GenerateMac`/`VerifyMac`, HMAC-SHA-256): vcare signs the
/// references it hands out (the gateway's receipt `ref`) and checks them
/// when they come back. The key never leaves KMS.
#[derive(Clone, Debug)]
pub struct KmsMac {
    kms: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsMac {
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self { kms, key_id: key_id.into() }
    }

    /// The MAC of `message`, base64url without padding.
    pub async fn sign(&self, message: &str) -> Result<String, CryptoError> {
        let out = self
            .kms
            .generate_mac()
            .key_id(&self.key_id)
            .mac_algorithm(aws_sdk_kms::types::MacAlgorithmSpec::HmacSha256)
            .message(aws_sdk_kms::primitives::Blob::new(message.as_bytes()))
            .send()
            .await
            .map_err(kms_error)?;
        Ok(URL_SAFE_NO_PAD.encode(out.mac.ok_or_else(|| CryptoError::Kms("no MAC".into()))?.into_inner()))
    }

    /// Whether `mac` (base64url) is `message`'s. A MAC that is not even
    /// base64 is `Ok(false)` without asking KMS; KMS unreachable is an error.
    pub async fn verify(&self, message: &str, mac: &str) -> Result<bool, CryptoError> {
        let Ok(mac) = URL_SAFE_NO_PAD.decode(mac.trim_end_matches('=')) else { return Ok(false) };
        if mac.len() != 32 {
            return Ok(false);
        }
        let out = self
            .kms
            .verify_mac()
            .key_id(&self.key_id)
            .mac_algorithm(aws_sdk_kms::types::MacAlgorithmSpec::HmacSha256)
            .message(aws_sdk_kms::primitives::Blob::new(message.as_bytes()))
            .mac(aws_sdk_kms::primitives::Blob::new(mac))
            .send()
            .await;
        match out {
            Ok(v) => Ok(v.mac_valid),
            // KMS answers a MAC that does not match with KMSInvalidMacException.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_kms_invalid_mac_exception()) => Ok(false),
            Err(e) => Err(kms_error(e)),
        }
    }
}
