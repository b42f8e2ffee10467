//! The HTTP API's JWT authorizer, emulated: the same checks API Gateway makes
//! before a request reaches a function, and the claims it passes on.
//!
//! Also the development identity provider: a P-256 key pair made on first
//! run, published as a JWKS file, and a minting command for caller tokens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::GatewayError;

/// Why a token was refused. The caller only ever sees 401 `Unauthorized`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejection {
    #[error("no bearer token")]
    Missing,
    #[error("token is malformed or uses an algorithm other than RS256/ES256")]
    Malformed,
    #[error("no key in the JWKS matches the token")]
    UnknownKey,
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("audience does not match")]
    Audience,
}

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// A JWT authorizer: issuer, audiences and the issuer's public keys.
pub struct Authorizer {
    issuer: String,
    audiences: Vec<String>,
    keys: Vec<Key>,
}

impl Authorizer {
    pub fn new(issuer: String, audiences: Vec<String>, jwks: &JwkSet) -> Result<Self, GatewayError> {
        let mut keys = Vec::new();
        for jwk in &jwks.keys {
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == jsonwebtoken::jwk::EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                _ => continue,
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| GatewayError::Auth(format!("JWKS key: {e}")))?;
            keys.push(Key { kid: jwk.common.key_id.clone(), alg, key });
        }
        if keys.is_empty() {
            return Err(GatewayError::Auth("the JWKS holds no RS256 or ES256 key".into()));
        }
        Ok(Self { issuer, audiences, keys })
    }

    /// Loads the JWKS from `http(s)://` or `file://`.
    pub async fn load_jwks(url: &str) -> Result<JwkSet, GatewayError> {
        let text = if let Some(path) = url.strip_prefix("file://") {
            std::fs::read_to_string(path).map_err(|e| GatewayError::Auth(format!("cannot read JWKS {path}: {e}")))?
        } else if url.starts_with("http://") || url.starts_with("https://") {
            reqwest::get(url)
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| GatewayError::Auth(format!("cannot fetch JWKS: {e}")))?
                .text()
                .await
                .map_err(|e| GatewayError::Auth(format!("cannot fetch JWKS: {e}")))?
        } else {
            return Err(GatewayError::Auth("AUTH_JWKS_URL must start with http://, https:// or file://".into()));
        };
        serde_json::from_str(&text).map_err(|e| GatewayError::Auth(format!("JWKS is not a JSON Web Key Set: {e}")))
    }

    /// Checks the `Authorization` header value as API Gateway does and returns
    /// the token's claims.
    pub fn check(&self, authorization: Option<&str>) -> Result<Map<String, Value>, Rejection> {
        let raw = authorization.map(str::trim).filter(|s| !s.is_empty()).ok_or(Rejection::Missing)?;
        let token = raw.strip_prefix("Bearer ").or_else(|| raw.strip_prefix("bearer ")).unwrap_or(raw).trim();
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(Rejection::Malformed);
        }
        let key = self
            .keys
            .iter()
            .filter(|k| k.alg == header.alg)
            .find(|k| header.kid.is_none() || k.kid == header.kid)
            .ok_or(Rejection::UnknownKey)?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| Rejection::Invalid(e.kind_name()))?;
        let claims = data.claims;
        // API Gateway: `aud` must match one configured audience; a token
        // without `aud` is matched on `client_id` instead.
        let matches = |v: &Value| v.as_str().is_some_and(|s| self.audiences.iter().any(|a| a == s));
        let audience_ok = match claims.get("aud") {
            Some(Value::Array(items)) => items.iter().any(matches),
            Some(single) => matches(single),
            None => claims.get("client_id").is_some_and(matches),
        };
        if !audience_ok {
            return Err(Rejection::Audience);
        }
        Ok(claims)
    }
}

trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for jsonwebtoken::errors::Error {
    fn kind_name(&self) -> String {
        format!("{:?}", self.kind())
    }
}

/// Claims as the HTTP API passes them to a function: every value a string;
/// arrays as `[a b]`, objects as `map[k:v]` (keys sorted).
pub fn flatten_claims(claims: &Map<String, Value>) -> HashMap<String, String> {
    claims.iter().map(|(k, v)| (k.clone(), flatten(v))).collect()
}

fn flatten(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(flatten).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().map(|(k, v)| format!("{k}:{}", flatten(v))).collect();
            entries.sort();
            format!("map[{}]", entries.join(" "))
        }
        other => other.to_string(),
    }
}

/// The development identity provider's files under `dir`.
pub struct DevIssuer {
    pub dir: PathBuf,
}

impl DevIssuer {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn jwks_path(&self) -> PathBuf {
        self.dir.join("jwks.json")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("signing-key.pem")
    }

    /// Makes the key pair unless it exists. The private key file is readable
    /// by its owner only.
    pub fn ensure(&self) -> Result<(), GatewayError> {
        if self.key_path().exists() && self.jwks_path().exists() {
            return Ok(());
        }
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let err = |what: &str| GatewayError::Auth(format!("dev key pair: {what}"));
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| err("generate"))?;
        let pkcs8 = pair.to_pkcs8v1().map_err(|_| err("encode"))?;
        let public = pair.public_key().as_ref();
        if public.len() != 65 || public[0] != 4 {
            return Err(err("unexpected public key encoding"));
        }
        let kid = vcare_domain::digest::hex(&vcare_domain::digest::sha256(public)[..8]);
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&public[1..33]), "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
        }]});
        std::fs::create_dir_all(&self.dir).map_err(|e| err(&e.to_string()))?;
        write_private(&self.key_path(), pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes())?;
        std::fs::write(self.jwks_path(), serde_json::to_vec_pretty(&jwks).unwrap_or_default())
            .map_err(|e| err(&e.to_string()))?;
        Ok(())
    }

    /// Mints a caller token as the platform's identity provider would:
    /// `sub`, `clinic_id` and Keycloak's `realm_access.roles`.
    pub fn mint(&self, issuer: &str, audience: &str, claims: &MintClaims) -> Result<String, GatewayError> {
        self.ensure()?;
        let pem = std::fs::read(self.key_path()).map_err(|e| GatewayError::Auth(format!("signing key: {e}")))?;
        let key = EncodingKey::from_ec_pem(&pem).map_err(|e| GatewayError::Auth(format!("signing key: {e}")))?;
        let jwks: JwkSet = serde_json::from_slice(&std::fs::read(self.jwks_path()).unwrap_or_default())
            .map_err(|e| GatewayError::Auth(format!("dev JWKS: {e}")))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = jwks.keys.first().and_then(|k| k.common.key_id.clone());
        let now = chrono::Utc::now().timestamp();
        let mut body = serde_json::json!({
            "iss": issuer, "aud": audience, "sub": claims.sub, "typ": "Bearer",
            "iat": now, "nbf": now, "exp": now + claims.ttl_seconds,
            "realm_access": {"roles": claims.roles},
        });
        if let Some(clinic) = &claims.clinic_id {
            body["clinic_id"] = Value::String(clinic.clone());
        }
        jsonwebtoken::encode(&header, &body, &key).map_err(|e| GatewayError::Auth(format!("mint: {e}")))
    }
}

impl DevIssuer {
    /// Signs `payload` exactly as given (members repeated, odd types and
    /// all), for tests of what a function makes of a token the authorizer
    /// accepts.
    pub fn mint_payload(&self, payload: &str) -> Result<String, GatewayError> {
        use base64::Engine;
        self.ensure()?;
        let pem = std::fs::read(self.key_path()).map_err(|e| GatewayError::Auth(format!("signing key: {e}")))?;
        let key = EncodingKey::from_ec_pem(&pem).map_err(|e| GatewayError::Auth(format!("signing key: {e}")))?;
        let jwks: JwkSet = serde_json::from_slice(&std::fs::read(self.jwks_path()).unwrap_or_default())
            .map_err(|e| GatewayError::Auth(format!("dev JWKS: {e}")))?;
        let kid = jwks.keys.first().and_then(|k| k.common.key_id.clone()).unwrap_or_default();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid}).to_string();
        let message = format!("{}.{}", b64.encode(header), b64.encode(payload));
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::ES256)
            .map_err(|e| GatewayError::Auth(format!("mint: {e}")))?;
        Ok(format!("{message}.{signature}"))
    }
}

/// What a minted development token says about its holder.
#[derive(Debug, Clone)]
pub struct MintClaims {
    pub sub: String,
    pub clinic_id: Option<String>,
    pub roles: Vec<String>,
    pub ttl_seconds: i64,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), GatewayError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| GatewayError::Auth(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(bytes).map_err(|e| GatewayError::Auth(format!("cannot write {}: {e}", path.display())))
}
