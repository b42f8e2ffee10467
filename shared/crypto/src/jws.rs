//! Compact JWS (RFC 7515) as Jitsi's and LiveKit's tokens use it: the
//! base64url header and claims, and the signature over both.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// `base64url(header).base64url(claims)`: what is signed.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// The token: the signing input and the base64url signature.
pub fn compact(input: &str, signature: &[u8]) -> String {
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// An HS256 token of `claims` (header `{"alg":"HS256","typ":"JWT"}`).
pub fn hs256(key: &hmac::Key, claims: &Value) -> String {
    let input = signing_input(&json!({"alg": "HS256", "typ": "JWT"}), claims);
    compact(&input, hmac::sign(key, input.as_bytes()).as_ref())
}
