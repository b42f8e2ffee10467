//! Delivery receipts as each SMS provider sends them: their signatures,
//! checked natively and in constant time, and their bodies, read into one
//! shape. Nothing here trusts a receipt whose signature did not check.

use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use vcare_domain::digest::{hex, sha256_hex};
use vcare_domain::notification::Status;
use vcare_domain::receipt::{gateway_status, twilio_status, vonage_status};

/// A receipt's parameters, in the order received. Names may repeat.
pub type Params = Vec<(String, String)>;

/// A receipt read into vcare's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedReceipt {
    /// The provider's own status word.
    pub provider_status: String,
    /// vcare's status, `None` for one vcare does not track.
    pub status: Option<Status>,
    /// The provider's error code; `None` for none (or "0").
    pub code: Option<String>,
    pub provider_message_id: Option<String>,
    /// vcare's attempt id as the provider echoes it (gateway `reference`,
    /// Vonage `client-ref`); Twilio has none (its URL carries `ref`).
    pub echoed_reference: Option<String>,
    /// When the network reported the final state, if the provider says
    /// (gateway `doneAt`, Vonage `message-timestamp`): the receipt lag.
    pub done_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn non_zero(code: Option<&str>) -> Option<String> {
    code.map(str::trim).filter(|c| !c.is_empty() && *c != "0" && *c != "000").map(str::to_owned)
}

// ------------------------------------------------------------------ Twilio

/// `X-Twilio-Signature`: base64 HMAC-SHA1, keyed by the auth token, over
/// the full URL Twilio called followed by every POST parameter's name and
/// value, sorted by name (then value).
pub fn twilio_signature(auth_token: &str, url: &str, params: &Params) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    STANDARD.encode(hmac::sign(&key, twilio_base(url, params).as_bytes()).as_ref())
}

fn twilio_base(url: &str, params: &Params) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut base = url.to_owned();
    for (k, v) in sorted {
        base.push_str(k);
        base.push_str(v);
    }
    base
}

/// Twilio may have called the URL with or without the default port; its
/// helper libraries accept either, and so does this.
fn with_and_without_port(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let (host, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
            if let Some(bare) = host.strip_suffix(port) {
                out.push(format!("{scheme}{bare}{path}"));
            } else if !host.contains(':') {
                out.push(format!("{scheme}{host}{port}{path}"));
            }
        }
    }
    out
}

/// Checks `X-Twilio-Signature` over every parameter received, in constant time.
pub fn twilio_valid(auth_token: &str, url: &str, params: &Params, signature: Option<&str>) -> bool {
    let Some(Ok(tag)) = signature.map(|s| STANDARD.decode(s.trim())) else { return false };
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    with_and_without_port(url).iter().any(|u| hmac::verify(&key, twilio_base(u, params).as_bytes(), &tag).is_ok())
}

/// Twilio's status callback (form parameters).
pub fn twilio_receipt(params: &Params) -> Option<ParsedReceipt> {
    let status = param(params, "MessageStatus").or_else(|| param(params, "SmsStatus"))?;
    Some(ParsedReceipt {
        provider_status: status.to_owned(),
        status: twilio_status(status),
        code: non_zero(param(params, "ErrorCode")),
        provider_message_id: param(params, "MessageSid").or_else(|| param(params, "SmsSid")).map(str::to_owned),
        echoed_reference: None,
        done_at: None,
    })
}

// ------------------------------------------------------------------ Vonage

/// How the Vonage account signs its webhooks (dashboard settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VonageSigning {
    /// `sig` = md5(`&k=v…` + secret), hex.
    Md5Hash,
    /// `sig` = HMAC-<alg>(secret, `&k=v…`), hex.
    Hmac(VonageHmac),
    /// `Authorization: Bearer <JWT>` signed HS256 with the secret, whose
    /// `payload_hash` is the body's SHA-256 (Messages API style).
    Jwt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VonageHmac {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl std::str::FromStr for VonageSigning {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "md5hash" => Self::Md5Hash,
            "md5" => Self::Hmac(VonageHmac::Md5),
            "sha1" => Self::Hmac(VonageHmac::Sha1),
            "sha256" => Self::Hmac(VonageHmac::Sha256),
            "sha512" => Self::Hmac(VonageHmac::Sha512),
            "jwt" => Self::Jwt,
            _ => return Err("one of md5hash, md5, sha1, sha256, sha512, jwt".into()),
        })
    }
}

/// The string Vonage signs: every parameter but `sig`, sorted by name, as
/// `&name=value`, with `&` and `=` in values replaced by `_`.
fn vonage_base(params: &Params) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "sig").collect();
    sorted.sort();
    sorted.iter().map(|(k, v)| format!("&{k}={}", v.replace(['&', '='], "_"))).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The `sig` Vonage computes for these parameters (hex, lowercase).
pub fn vonage_signature(signing: VonageSigning, secret: &str, params: &Params) -> Option<String> {
    use md5::Digest;
    let base = vonage_base(params);
    Some(match signing {
        VonageSigning::Md5Hash => hex(&md5::Md5::digest(format!("{base}{secret}").as_bytes())),
        VonageSigning::Hmac(VonageHmac::Md5) => {
            // HMAC-MD5 (RFC 2104) over 64-byte blocks: aws-lc does not offer it.
            let mut key = [0u8; 64];
            if secret.len() > 64 {
                key[..16].copy_from_slice(&md5::Md5::digest(secret.as_bytes()));
            } else {
                key[..secret.len()].copy_from_slice(secret.as_bytes());
            }
            let pad = |byte: u8| key.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
            let inner = md5::Md5::new().chain_update(pad(0x36)).chain_update(base.as_bytes()).finalize();
            hex(&md5::Md5::new().chain_update(pad(0x5c)).chain_update(inner).finalize())
        }
        VonageSigning::Hmac(alg) => {
            let algorithm = match alg {
                VonageHmac::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                VonageHmac::Sha256 => hmac::HMAC_SHA256,
                VonageHmac::Sha512 => hmac::HMAC_SHA512,
                VonageHmac::Md5 => unreachable!("handled above"),
            };
            hex(hmac::sign(&hmac::Key::new(algorithm, secret.as_bytes()), base.as_bytes()).as_ref())
        }
        VonageSigning::Jwt => return None,
    })
}

/// Checks a Vonage receipt's signature: `sig` (any case) in constant time
/// and `timestamp` within `max_skew_secs` of `now`; or, for `Jwt`, the
/// bearer token and the hash of `body` it carries.
pub fn vonage_valid(
    signing: VonageSigning,
    secret: &str,
    params: &Params,
    body: &[u8],
    authorization: Option<&str>,
    now: i64,
    max_skew_secs: i64,
) -> bool {
    let fresh = |t: i64| within_skew(now, t, max_skew_secs);
    if signing == VonageSigning::Jwt {
        return vonage_jwt_valid(secret, body, authorization).is_some_and(fresh);
    }
    let Some(timestamp) = param(params, "timestamp").and_then(|t| t.trim().parse::<i64>().ok()) else {
        return false;
    };
    let (Some(given), Some(expected)) = (
        param(params, "sig").and_then(|s| unhex(&s.to_ascii_lowercase())),
        vonage_signature(signing, secret, params).and_then(|s| unhex(&s)),
    ) else {
        return false;
    };
    fresh(timestamp) && given.len() == expected.len() && constant_time_eq(&given, &expected)
}

/// The JWT's `iat` if it is valid and carries the body's hash.
fn vonage_jwt_valid(secret: &str, body: &[u8], authorization: Option<&str>) -> Option<i64> {
    let token = authorization?.strip_prefix("Bearer ")?.trim();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .ok()?
    .claims;
    let hash = sha256_hex(body);
    let given = claims["payload_hash"].as_str()?.to_ascii_lowercase();
    (given.len() == hash.len() && constant_time_eq(given.as_bytes(), hash.as_bytes()))
        .then(|| claims["iat"].as_i64())
        .flatten()
}

/// Whether a signed time `t` (unix seconds, any value a caller may send)
/// lies within `max_skew_secs` of `now`, without overflow.
pub(crate) fn within_skew(now: i64, t: i64, max_skew_secs: i64) -> bool {
    now.abs_diff(t) <= max_skew_secs.unsigned_abs()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Vonage's SMS API delivery receipt (form or JSON parameters).
pub fn vonage_receipt(params: &Params) -> Option<ParsedReceipt> {
    let status = param(params, "status")?;
    Some(ParsedReceipt {
        provider_status: status.to_owned(),
        status: vonage_status(status),
        code: non_zero(param(params, "err-code")),
        provider_message_id: param(params, "messageId").map(str::to_owned),
        echoed_reference: param(params, "client-ref").map(str::to_owned),
        done_at: param(params, "message-timestamp")
            .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok())
            .map(|t| t.and_utc()),
    })
}

// ------------------------------------------------------------ the gateway

/// The in-country gateway's receipt (API.md): JSON `{messageId, reference,
/// status, err, doneAt}`. Its authenticity is the KMS MAC over the callback
/// URL's `ref`, checked by the caller.
pub fn gateway_receipt(body: &serde_json::Value) -> Option<ParsedReceipt> {
    let status = body["status"].as_str()?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    Some(ParsedReceipt {
        provider_status: status.to_owned(),
        status: gateway_status(status),
        code: non_zero(text(&body["err"]).as_deref()),
        provider_message_id: text(&body["messageId"]),
        echoed_reference: text(&body["reference"]),
        done_at: body["doneAt"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc)),
    })
}

/// A receipt's identity for de-duplication: its parameters without the
/// per-delivery signature fields, sorted.
pub fn receipt_hash(provider: &str, params: &Params) -> String {
    let mut sorted: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| !matches!(k.as_str(), "sig" | "timestamp" | "nonce")).collect();
    sorted.sort();
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(provider.as_bytes());
    for (k, v) in sorted {
        ctx.update(&[0]);
        ctx.update(k.as_bytes());
        ctx.update(&[0]);
        ctx.update(v.as_bytes());
    }
    hex(&ctx.finish().as_ref()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Twilio's own documented example (security docs): auth token 12345.
    #[test]
    fn twilio_signature_matches_twilios_documented_example() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(twilio_signature("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(twilio_valid("12345", url, &params, Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")));
        assert!(
            twilio_valid(
                "12345",
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                &params,
                Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
            ),
            "with the default port"
        );
        let mut tampered = params.clone();
        tampered[2].1 = "1235".into();
        assert!(!twilio_valid("12345", url, &tampered, Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")), "a tampered body");
        let mut extra = params.clone();
        extra.push(("Extra".into(), "1".into()));
        assert!(!twilio_valid("12345", url, &extra, Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")), "a parameter added");
        assert!(
            !twilio_valid(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=3",
                &params,
                Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
            ),
            "a tampered URL"
        );
        assert!(!twilio_valid("12345", url, &params, None), "missing");
        assert!(!twilio_valid("12345", url, &params, Some("not base64!")), "garbage");
        assert!(!twilio_valid("54321", url, &params, Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")), "another token");
    }

    /// Vonage's SDKs' own test vector: a=1, b=2, timestamp=1461605396, secret "secret".
    #[test]
    fn vonage_md5hash_matches_vonages_test_vector_and_hmacs_check() {
        let params = p(&[("a", "1"), ("b", "2"), ("timestamp", "1461605396")]);
        assert_eq!(
            vonage_signature(VonageSigning::Md5Hash, "secret", &params).unwrap(),
            "6af838ef94998832dbfc29020b564830"
        );
        let mut signed = params.clone();
        signed.push(("sig".into(), "6AF838EF94998832DBFC29020B564830".into()));
        let now = 1461605396 + 60;
        assert!(vonage_valid(VonageSigning::Md5Hash, "secret", &signed, b"", None, now, 300), "any case");
        assert!(!vonage_valid(VonageSigning::Md5Hash, "secret", &signed, b"", None, now + 600, 300), "stale");
        assert!(!vonage_valid(VonageSigning::Md5Hash, "other", &signed, b"", None, now, 300));
        let mut tampered = signed.clone();
        tampered[0].1 = "2".into();
        assert!(!vonage_valid(VonageSigning::Md5Hash, "secret", &tampered, b"", None, now, 300));
        assert!(!vonage_valid(VonageSigning::Md5Hash, "secret", &params, b"", None, now, 300), "no sig");
        // HMAC-MD5 against RFC 2202's first test case shape: the known answer for key "key".
        let hm = vonage_signature(VonageSigning::Hmac(VonageHmac::Md5), "key", &p(&[])).unwrap();
        assert_eq!(hm, "63530468a04e386459855da0063b6596", "HMAC-MD5(key, \"\")");
        for alg in [VonageHmac::Md5, VonageHmac::Sha1, VonageHmac::Sha256, VonageHmac::Sha512] {
            let signing = VonageSigning::Hmac(alg);
            let mut signed = params.clone();
            signed.push(("sig".into(), vonage_signature(signing, "secret", &params).unwrap().to_uppercase()));
            assert!(vonage_valid(signing, "secret", &signed, b"", None, now, 300), "{alg:?}");
            assert!(!vonage_valid(signing, "secreT", &signed, b"", None, now, 300), "{alg:?}");
        }
        // Values' & and = are replaced before signing.
        assert_eq!(vonage_base(&p(&[("b", "x=y&z"), ("a", "1"), ("sig", "s")])), "&a=1&b=x_y_z");
    }

    #[test]
    fn vonage_jwt_checks_the_token_and_the_body_hash() {
        let body = br#"{"status":"delivered"}"#;
        let hash = sha256_hex(body);
        let token = |secret: &str, hash: &str, iat: i64| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &serde_json::json!({"iat": iat, "jti": "x", "payload_hash": hash, "api_key": "k"}),
                &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap()
        };
        let ok = format!("Bearer {}", token("s3cret", &hash, 1000));
        assert!(vonage_valid(VonageSigning::Jwt, "s3cret", &p(&[]), body, Some(&ok), 1100, 300));
        assert!(!vonage_valid(VonageSigning::Jwt, "s3cret", &p(&[]), b"{}", Some(&ok), 1100, 300), "other body");
        assert!(!vonage_valid(VonageSigning::Jwt, "other", &p(&[]), body, Some(&ok), 1100, 300), "other secret");
        assert!(!vonage_valid(VonageSigning::Jwt, "s3cret", &p(&[]), body, Some(&ok), 9000, 300), "stale");
        assert!(!vonage_valid(VonageSigning::Jwt, "s3cret", &p(&[]), body, None, 1100, 300), "missing");
    }

    #[test]
    fn receipts_read_and_hash() {
        let t = twilio_receipt(&p(&[("MessageSid", "SM1"), ("MessageStatus", "undelivered"), ("ErrorCode", "30003")]))
            .unwrap();
        assert_eq!(
            (t.status, t.code.as_deref(), t.provider_message_id.as_deref()),
            (Some(Status::Undelivered), Some("30003"), Some("SM1"))
        );
        let v = vonage_receipt(&p(&[
            ("status", "delivered"),
            ("err-code", "0"),
            ("client-ref", "att_x"),
            ("messageId", "m1"),
        ]))
        .unwrap();
        assert_eq!((v.status, v.code, v.echoed_reference.as_deref()), (Some(Status::Delivered), None, Some("att_x")));
        let g = gateway_receipt(
            &serde_json::json!({"messageId": "g1", "reference": "att_y", "status": "REJECTD", "err": 11}),
        )
        .unwrap();
        assert_eq!((g.status, g.code.as_deref()), (Some(Status::Failed), Some("11")));
        assert!(gateway_receipt(&serde_json::json!({"status": 3})).is_none());
        let a = p(&[("status", "delivered"), ("timestamp", "1"), ("sig", "a")]);
        let b = p(&[("sig", "b"), ("timestamp", "2"), ("status", "delivered")]);
        assert_eq!(receipt_hash("vonage", &a), receipt_hash("vonage", &b), "a repeat with a new signature");
        assert_ne!(receipt_hash("vonage", &a), receipt_hash("vonage", &p(&[("status", "expired")])));
    }
}
