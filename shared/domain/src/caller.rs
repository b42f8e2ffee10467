//! Who is calling: the authenticated user, their clinic (the tenant) and
//! their platform roles, as the HTTP edge read them from the caller token.

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

    /// The role as tokens spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Doctor => "doctor",
            Self::Nurse => "nurse",
            Self::Interpreter => "interpreter",
            Self::ClinicAdmin => "clinic-admin",
            Self::Service => "service",
        }
    }
}

/// The authenticated caller: `sub`, `clinic_id` (the tenant) and realm roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub clinic_id: String,
    pub roles: Vec<Role>,
}

/// A clinic id: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter or
/// digit. Anything else (null, a number, an array, an empty string) is no
/// clinic.
pub fn is_clinic_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Caller {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn has_any_role(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has_role(*r))
    }
}
