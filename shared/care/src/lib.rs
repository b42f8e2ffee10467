//! The virtual-care functions' common ground: config read once, the room
//! store, the caller's standing towards a room, and the room's API view.

pub mod tokens;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use vcare_aws::SdkConfig;
use vcare_domain::ids::is_valid_external_id;
use vcare_domain::room::{JoinPolicy, Room, Standing};
use vcare_http::{Caller, Problem, Role};
use vcare_runtime::{ConfigError, Env};
use vcare_store::RoomStore;

pub use vcare_http::{rejected, require_role, store_problem};

/// Roles that see every room of their clinic.
pub const STAFF: &[Role] = &[Role::Doctor, Role::Nurse, Role::ClinicAdmin, Role::Service];

#[derive(Debug, Clone)]
pub struct CareConfig {
    pub table_name: String,
    /// `JITSI_DOMAIN`: where rooms are (`https://<domain>/<jitsiRoom>`).
    pub jitsi_domain: String,
    pub join: JoinPolicy,
}

impl CareConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let minutes = |name: &str, default: i64| env.bounded(name, default, 0, 24 * 60).map(Duration::minutes);
        let jitsi_domain = env.required("JITSI_DOMAIN")?.to_lowercase();
        if jitsi_domain.contains('/') || jitsi_domain.contains(':') || jitsi_domain.is_empty() {
            return Err(ConfigError::Invalid {
                name: "JITSI_DOMAIN".into(),
                reason: "a host name, like meet.example.org".into(),
            });
        }
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            jitsi_domain,
            join: JoinPolicy { join_window: minutes("JOIN_WINDOW_MINUTES", 15)?, grace: minutes("GRACE_MINUTES", 30)? },
        })
    }
}

/// Config and the room store, built once per container.
#[derive(Debug, Clone)]
pub struct Care {
    pub config: CareConfig,
    pub store: RoomStore,
}

impl Care {
    pub fn new(config: CareConfig, sdk: &SdkConfig) -> Self {
        let store = RoomStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table_name.clone());
        Self { config, store }
    }

    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(CareConfig::from_env(env)?, sdk))
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    pub fn join_url(&self, room: &Room) -> String {
        format!("https://{}/{}", self.config.jitsi_domain, room.jitsi_room)
    }

    /// The room as API.md shows it.
    pub fn view(&self, room: &Room) -> Value {
        let mut v = serde_json::to_value(room).unwrap_or_default();
        v["joinUrl"] = Value::String(self.join_url(room));
        v
    }

    /// Loads a room of the caller's clinic and says how the caller stands to
    /// it. A room of another clinic, a room that does not exist and a room
    /// the caller may not see are the same 404.
    pub async fn room_for(&self, caller: &Caller, room_id: &str) -> Result<(Room, Standing), Problem> {
        if !is_valid_external_id(room_id) {
            return Err(Problem::not_found("no such room"));
        }
        let (room, _) = self.store.get(&caller.clinic_id, room_id).await.map_err(store_problem)?.ok_or_else(no_room)?;
        match standing(caller, &room) {
            Standing::Stranger => Err(no_room()),
            s => Ok((room, s)),
        }
    }
}

pub fn no_room() -> Problem {
    Problem::not_found("no such room")
}

/// Listed participants stand as their role; clinic staff and services see
/// every room of their clinic; anyone else is a stranger to it.
pub fn standing(caller: &Caller, room: &Room) -> Standing {
    if room.clinic_id != caller.clinic_id {
        return Standing::Stranger;
    }
    if let Some(p) = room.participant(&caller.user_id) {
        return Standing::Participant(p.role);
    }
    if caller.has_any_role(STAFF) { Standing::Staff } else { Standing::Stranger }
}

/// An error for Jitsi's callers: problem+json with the `message` member
/// Prosody's modules read (`mod_reservations` shows it to the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitsiProblem {
    pub status: axum::http::StatusCode,
    pub message: String,
}

pub fn jitsi_problem(status: u16, text: impl Into<String>) -> JitsiProblem {
    let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    JitsiProblem { status, message: text.into() }
}

impl From<Problem> for JitsiProblem {
    fn from(p: Problem) -> Self {
        Self { status: p.status, message: p.detail }
    }
}

impl axum::response::IntoResponse for JitsiProblem {
    fn into_response(self) -> axum::response::Response {
        let body = serde_json::json!({
            "type": "about:blank", "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(), "detail": self.message, "message": self.message,
        });
        (self.status, [(axum::http::header::CONTENT_TYPE, "application/problem+json")], body.to_string())
            .into_response()
    }
}

/// `X-Jitsi-Shared-Secret` check for Jitsi's callbacks: 401 when missing or wrong.
pub fn check_jitsi_secret(
    secret: &vcare_jitsi::WebhookSecret,
    headers: &axum::http::HeaderMap,
) -> Result<(), JitsiProblem> {
    let presented = headers.get("x-jitsi-shared-secret").map(|v| v.as_bytes());
    if secret.matches(presented) {
        Ok(())
    } else {
        tracing::warn!("a Jitsi callback without the right shared secret was refused");
        Err(jitsi_problem(401, "missing or wrong X-Jitsi-Shared-Secret"))
    }
}

/// The webhook secret from `JITSI_WEBHOOK_SECRET_CIPHERTEXT`, decrypted once.
pub async fn webhook_secret(env: &Env, sdk: &SdkConfig) -> Result<vcare_jitsi::WebhookSecret, vcare_runtime::Error> {
    let ciphertext = env.required("JITSI_WEBHOOK_SECRET_CIPHERTEXT")?;
    Ok(vcare_jitsi::WebhookSecret::decrypt(&aws_sdk_kms::Client::new(sdk), &ciphertext).await?)
}

/// Only the room's listed participants may do this: staff who are not
/// listed get 403 (they may see the room), strangers never get here (404).
pub fn participant_only(standing: Standing) -> Result<(), Problem> {
    match standing {
        Standing::Participant(_) => Ok(()),
        _ => Err(Problem::forbidden("only the room's participants may do this")),
    }
}

/// A virtual-care function that needs only [`Care`]: its router over the
/// shared state, as Lambda and the gateway run it.
pub fn http_function(
    env: &Env,
    sdk: &SdkConfig,
    router: fn(std::sync::Arc<Care>) -> axum::Router,
) -> Result<vcare_http::HttpFunction, ConfigError> {
    Ok(vcare_http::HttpFunction::new(router(std::sync::Arc::new(Care::from_env(env, sdk)?))))
}
