//! Personal data as anyone may see it: masked, or hashed.

use serde::{Deserialize, Serialize};

use super::*;

/// A push token's fingerprint: what vcare remembers of a dead token.
pub fn token_hash(t: &PushToken) -> String {
    let platform =
        serde_json::to_value(t.platform).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    crate::digest::sha256_hex(format!("{platform}:{}", t.token).as_bytes())
}

/// `+93701234567` → `+93*******567`: enough to recognise, not to use.
pub fn mask_phone(phone: &str) -> String {
    let n = phone.chars().count();
    if n <= 6 {
        return "*".repeat(n);
    }
    phone.chars().enumerate().map(|(i, c)| if i < 3 || i >= n - 3 { c } else { '*' }).collect()
}

/// `zahra@example.org` → `z***@example.org`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}

/// The recipient as anyone may see it: masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MaskedRecipient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub push_tokens: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

impl MaskedRecipient {
    pub fn of(r: &Recipient) -> Self {
        Self {
            user_id: r.user_id.clone(),
            phone: r.phone.as_deref().map(mask_phone),
            email: r.email.as_deref().map(mask_email),
            push_tokens: r.push_tokens.len(),
            locale: r.locale.clone(),
        }
    }
}
