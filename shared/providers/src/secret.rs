//! Provider secrets: decrypted once at cold start, kept in a wrapper that
//! never prints them.

use vcare_runtime::Env;

/// A secret value (an API key, an auth token, a private key). Its `Debug`
/// says only that it is there; [`Secret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// Opens secret settings with one KMS client.
pub struct Secrets {
    kms: aws_sdk_kms::Client,
}

impl Secrets {
    pub fn new(sdk: &vcare_aws::SdkConfig) -> Self {
        Self { kms: aws_sdk_kms::Client::new(sdk) }
    }

    /// See [`secret_setting`].
    pub async fn get(&self, env: &Env, name: &str) -> Result<Option<Secret>, vcare_runtime::Error> {
        secret_setting(env, &self.kms, name).await
    }
}

/// A secret setting: `<NAME>_CIPHERTEXT`, KMS-encrypted with the purpose
/// `<name>` in kebab case (as the template's `...Ciphertext` parameters),
/// decrypted once at cold start. `None` when it is not set.
pub async fn secret_setting(
    env: &Env,
    kms: &aws_sdk_kms::Client,
    name: &str,
) -> Result<Option<Secret>, vcare_runtime::Error> {
    match env.get(&format!("{name}_CIPHERTEXT")) {
        None => Ok(None),
        Some(ciphertext) => {
            let purpose = name.to_lowercase().replace('_', "-");
            let plain = vcare_crypto::decrypt_secret(kms, ciphertext, &purpose).await?;
            Ok(Some(Secret(String::from_utf8(plain).map_err(|_| format!("{name} is not text"))?)))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_secret_never_prints() {
        let s = super::Secret::new("sk_live_123");
        assert_eq!(format!("{s:?}"), "Secret(redacted)");
        assert_eq!(s.expose(), "sk_live_123");
    }
}
