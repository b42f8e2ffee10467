//! Who is calling: read exactly from the bearer token API Gateway's JWT
//! authorizer has just verified.
//!
//! The authorizer hands claims on flattened to strings (`[doctor patient]`,
//! `map[roles:[a b]]`), which cannot tell one role with a space from two
//! roles. So the claims are read from the JSON payload of the token in the
//! `Authorization` header — the very token the authorizer checked (its
//! `sub`, `iat` and `exp` must match the authorizer's) — and only as the
//! contract names them: `sub`, `clinic_id` (a string of [`is_clinic_id`]'s
//! alphabet) and `realm_access.roles` (each role a whole element). A payload
//! that repeats a member is refused.

use axum::extract::FromRequestParts;
use base64::Engine;
use http::request::Parts;
use lambda_http::request::RequestContext;
use serde_json::{Map, Value};

use vcare_domain::caller::{Caller, Role, is_clinic_id};

use crate::Problem;
use crate::strict_json;

fn unauthorized() -> Problem {
    Problem::unauthorized("no valid caller token")
}

/// The payload of a compact JWS (`header.payload.signature`) as a JSON
/// object, with no member repeated at any depth.
fn payload(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (_, body, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else { return None };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body.trim_end_matches('=')).ok()?;
    match strict_json::parse(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Reads the caller from the verified token `bearer` (the
/// `Authorization` header's token) and the authorizer's `claim`s, which
/// must describe the same token. No token, or not the authorizer's: 401.
/// No valid `clinic_id`: 403.
pub fn caller_from_token<'a>(bearer: Option<&str>, claim: impl Fn(&str) -> Option<&'a str>) -> Result<Caller, Problem> {
    let payload = bearer.and_then(payload).ok_or_else(unauthorized)?;
    let text = |name: &str| match payload.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    // The header's token is the one the authorizer verified: the same
    // `sub`, and the same `iat`/`exp` (numbers, compared as numbers: a
    // float's shortest form, `1.7954316e+09`, reads back exactly).
    let verified = claim("sub").is_some_and(|s| !s.is_empty()) && text("sub").as_deref() == claim("sub");
    let same_time = |c: &str| match (text(c), claim(c)) {
        (None, None) => true,
        (Some(ours), Some(theirs)) => match (ours.parse::<f64>(), theirs.parse::<f64>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => ours == theirs,
        },
        _ => false,
    };
    if !verified || !same_time("iat") || !same_time("exp") {
        return Err(unauthorized());
    }
    let user_id = match payload.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(unauthorized()),
    };
    let clinic_id = match payload.get("clinic_id") {
        Some(Value::String(s)) if is_clinic_id(s) => s.clone(),
        _ => return Err(Problem::forbidden("the caller token carries no valid clinic")),
    };
    let mut roles = Vec::new();
    let listed = payload.get("realm_access").and_then(|r| r.get("roles")).and_then(Value::as_array);
    for role in listed.into_iter().flatten().filter_map(Value::as_str).filter_map(Role::parse) {
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(Caller { user_id, clinic_id, roles })
}

/// The authenticated caller as a handler's extractor: 401 or 403 (a
/// problem) when the request carries no valid caller token. Derefs to the
/// [`Caller`] the services take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated(pub Caller);

impl std::ops::Deref for Authenticated {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        caller_of(&parts.extensions, &parts.headers).map(Authenticated)
    }
}

/// The caller of a request, from its authorizer context and token.
pub(crate) fn caller_of(extensions: &http::Extensions, headers: &http::HeaderMap) -> Result<Caller, Problem> {
    let jwt = match extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()),
        _ => None,
    };
    let jwt = jwt.ok_or_else(unauthorized)?;
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    caller_from_token(bearer, |name| jwt.claims.get(name).map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn token(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.c2ln", b64(r#"{"alg":"ES256"}"#), b64(payload))
    }

    /// The caller from a payload, with the authorizer's claims as it would
    /// flatten them (only the ones checked against the token matter here).
    fn caller(payload: &str) -> Result<Caller, u16> {
        let v: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
        let mut claims = HashMap::new();
        for name in ["sub", "iat", "exp"] {
            match &v[name] {
                Value::String(s) => claims.insert(name, s.clone()),
                Value::Number(n) => claims.insert(name, n.to_string()),
                _ => None,
            };
        }
        caller_from_token(Some(&token(payload)), |k| claims.get(k).map(String::as_str)).map_err(|p| p.status.as_u16())
    }

    #[test]
    fn roles_are_whole_elements_of_realm_access_roles_only() {
        let ok = caller(
            r#"{"sub":"u-1","clinic_id":"c-1","iat":1,"exp":2,"realm_access":{"roles":["offline_access","doctor","patient","doctor"]}}"#,
        )
        .unwrap();
        assert_eq!(
            ok,
            Caller { user_id: "u-1".into(), clinic_id: "c-1".into(), roles: vec![Role::Doctor, Role::Patient] }
        );
        // The probes that got through when roles were searched for in text.
        for (payload, why) in [
            (r#"{"sub":"u","clinic_id":"c","realm_access":{"roles":["read-only service"]}}"#, "a role with a space"),
            (r#"{"sub":"u","clinic_id":"c","realm_access":{"roles":["not clinic-admin"]}}"#, "not clinic-admin"),
            (r#"{"sub":"u","clinic_id":"c","realm_access":{"roles":["former doctor"]}}"#, "former doctor"),
            (r#"{"sub":"u","clinic_id":"c","realm_access":{"aroles":"[clinic-admin]","roles":[]}}"#, "aroles"),
            (r#"{"sub":"u","clinic_id":"c","roles":["service"]}"#, "a top-level roles claim"),
            (r#"{"sub":"u","clinic_id":"c","realm_access":{"roles":"doctor"}}"#, "roles not an array"),
            (r#"{"sub":"u","clinic_id":"c","realm_access":"{roles:[doctor]}"}"#, "realm_access flattened"),
            (r#"{"sub":"u","clinic_id":"c","realm_access":{"roles":["Doctor"," doctor"]}}"#, "not exactly the name"),
        ] {
            assert_eq!(caller(payload).unwrap().roles, vec![], "{why}");
        }
    }

    #[test]
    fn a_clinic_is_a_string_of_the_alphabet_and_anything_else_is_403() {
        for clinic in ["null", "\"\"", "42", "true", "[\"c-1\"]", "{\"id\":\"c-1\"}", "\"c 1\"", "\"-c\"", "\"c/1\""] {
            let payload = format!(r#"{{"sub":"u","clinic_id":{clinic},"realm_access":{{"roles":["doctor"]}}}}"#);
            assert_eq!(caller(&payload), Err(403), "{clinic}");
        }
        assert_eq!(caller(r#"{"sub":"u"}"#), Err(403));
        assert!(caller(r#"{"sub":"u","clinic_id":"Clinic_1.kabul-2"}"#).is_ok());
        assert!(!is_clinic_id(&"c".repeat(65)));
    }

    #[test]
    fn the_token_must_be_the_authorizers_and_repeat_no_member() {
        assert_eq!(caller(r#"{"clinic_id":"c"}"#), Err(401), "no sub");
        assert_eq!(caller(r#"{"sub":"","clinic_id":"c"}"#), Err(401));
        for repeated in [
            r#"{"sub":"u","clinic_id":"c-1","clinic_id":"c-2"}"#,
            r#"{"sub":"u","clinic_id":"c","realm_access":{"roles":[],"roles":["doctor"]}}"#,
        ] {
            assert_eq!(caller(repeated), Err(401), "{repeated}");
        }
        // Another token than the one the authorizer verified.
        let claims = HashMap::from([("sub", "u-1"), ("exp", "2")]);
        let other = token(r#"{"sub":"u-2","clinic_id":"c","exp":2}"#);
        assert_eq!(caller_from_token(Some(&other), |k| claims.get(k).copied()).unwrap_err().status, 401);
        let later = token(r#"{"sub":"u-1","clinic_id":"c","exp":3}"#);
        assert_eq!(caller_from_token(Some(&later), |k| claims.get(k).copied()).unwrap_err().status, 401);
        let none: HashMap<&str, &str> = HashMap::new();
        let fine = token(r#"{"sub":"u-1","clinic_id":"c"}"#);
        assert_eq!(caller_from_token(Some(&fine), |k| none.get(k).copied()).unwrap_err().status, 401, "no authorizer");
        assert_eq!(caller_from_token(None, |k| claims.get(k).copied()).unwrap_err().status, 401);
        for bad in ["", "a.b", "a.!!!.c", "a.b.c.d", &token("[1]"), &token("not json")] {
            assert_eq!(caller_from_token(Some(bad), |k| claims.get(k).copied()).unwrap_err().status, 401, "{bad}");
        }
    }
}
