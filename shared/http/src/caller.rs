use axum::extract::FromRequestParts;
use http::request::Parts;
use lambda_http::request::RequestContext;

use crate::Problem;

/// A platform role (API.md). Roles a token carries that vcare does not know
/// (Keycloak adds `offline_access`, `uma_authorization`, ...) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Patient,
    Doctor,
    Nurse,
    Interpreter,
    ClinicAdmin,
    Service,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "patient" => Self::Patient,
            "doctor" => Self::Doctor,
            "nurse" => Self::Nurse,
            "interpreter" => Self::Interpreter,
            "clinic-admin" => Self::ClinicAdmin,
            "service" => Self::Service,
            _ => return None,
        })
    }
}

/// The authenticated caller: `sub`, `clinic_id` (the tenant) and realm roles,
/// as API Gateway's JWT authorizer passes them on after checking the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub clinic_id: String,
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn has_any_role(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has_role(*r))
    }

    /// Reads the caller from authorizer claims (all values strings, as the
    /// HTTP API delivers them). No `sub`: 401. No `clinic_id`: 403.
    pub fn from_claims<'a>(claim: impl Fn(&str) -> Option<&'a str>) -> Result<Self, Problem> {
        let user_id =
            claim("sub").filter(|s| !s.is_empty()).ok_or_else(|| Problem::unauthorized("no valid caller token"))?;
        let clinic_id = claim("clinic_id")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Problem::forbidden("the caller token carries no clinic"))?;
        let mut roles = claim("realm_access").map(roles_from_claim).unwrap_or_default();
        for role in claim("roles").map(roles_from_claim).unwrap_or_default() {
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        Ok(Self { user_id: user_id.to_owned(), clinic_id: clinic_id.to_owned(), roles })
    }
}

/// Roles from a claim value in any of the forms it reaches a function in:
/// Keycloak's JSON `{"roles":["doctor","patient"]}`, a JSON array, or the HTTP
/// API authorizer's flattened `[doctor patient]`, `{roles:[doctor patient]}`
/// or `map[roles:[doctor patient]]`.
pub fn roles_from_claim(raw: &str) -> Vec<Role> {
    let list = match raw.find("roles") {
        Some(i) => &raw[i + "roles".len()..],
        None => raw,
    };
    let list = match (list.find('['), list.find(']')) {
        (Some(open), Some(close)) if open < close => &list[open + 1..close],
        _ => list,
    };
    let mut roles = Vec::new();
    for token in list.split(|c: char| c.is_whitespace() || c == ',') {
        if let Some(role) = Role::parse(token.trim_matches(|c| c == '"' || c == '\''))
            && !roles.contains(&role)
        {
            roles.push(role);
        }
    }
    roles
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let jwt = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()),
            _ => None,
        };
        let jwt = jwt.ok_or_else(|| Problem::unauthorized("no valid caller token"))?;
        Caller::from_claims(|name| jwt.claims.get(name).map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn roles_parse_in_every_form_the_authorizer_produces() {
        let want = vec![Role::Doctor, Role::Patient];
        for raw in [
            r#"{"roles":["offline_access","doctor","patient"]}"#,
            "{roles:[offline_access doctor patient]}",
            "map[roles:[offline_access doctor patient]]",
            "[doctor patient]",
            r#"["doctor","patient"]"#,
            "doctor,patient",
        ] {
            assert_eq!(roles_from_claim(raw), want, "{raw}");
        }
        assert_eq!(roles_from_claim("clinic-admin"), vec![Role::ClinicAdmin]);
        assert!(roles_from_claim("").is_empty());
        assert!(roles_from_claim("[surgeon]").is_empty());
    }

    #[test]
    fn caller_needs_sub_and_clinic() {
        let claims: HashMap<&str, &str> =
            HashMap::from([("sub", "u-1"), ("clinic_id", "c-1"), ("realm_access", "{roles:[nurse]}")]);
        let caller = Caller::from_claims(|k| claims.get(k).copied()).unwrap();
        assert_eq!(caller, Caller { user_id: "u-1".into(), clinic_id: "c-1".into(), roles: vec![Role::Nurse] });

        let no_clinic: HashMap<&str, &str> = HashMap::from([("sub", "u-1")]);
        assert_eq!(Caller::from_claims(|k| no_clinic.get(k).copied()).unwrap_err().status, 403);
        let nobody: HashMap<&str, &str> = HashMap::new();
        assert_eq!(Caller::from_claims(|k| nobody.get(k).copied()).unwrap_err().status, 401);
    }
}
