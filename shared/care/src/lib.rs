//! The virtual-care functions' common ground: config read once, the room
//! store, the caller's standing towards a room, and the room's API view.

pub mod end_meeting;
mod error;
pub mod images;
pub mod links;
pub mod tokens;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use vcare_aws::SdkConfig;
use vcare_domain::appointment::reminder_dues;
use vcare_domain::caller::{Caller, Role};
use vcare_domain::clinic::{PerClinic, ReminderWindows};
use vcare_domain::ids::is_valid_external_id;
use vcare_domain::room::{JoinPolicy, Room, Standing};
use vcare_runtime::{Clock, ConfigError, Env};
use vcare_store::RoomStore;

pub use error::RoomError;

/// Roles that see every room of their clinic.
pub const STAFF: &[Role] = &[Role::Doctor, Role::Nurse, Role::ClinicAdmin, Role::Service];

#[derive(Debug, Clone)]
pub struct RoomsConfig {
    pub table_name: String,
    /// `JITSI_DOMAIN`: where rooms are (`https://<domain>/<jitsiRoom>`).
    pub jitsi_domain: String,
    pub join: JoinPolicy,
    /// When appointment reminders go out (`REMINDER_WINDOWS`, default
    /// `24h,1h,10m`; per clinic `CLINIC_REMINDER_WINDOWS`): written into
    /// the due index with the room.
    pub reminder_windows: PerClinic<ReminderWindows>,
}

impl RoomsConfig {
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
            reminder_windows: reminder_windows(env)?,
        })
    }
}

/// `REMINDER_WINDOWS` and `CLINIC_REMINDER_WINDOWS`, checked by name.
pub fn reminder_windows(env: &Env) -> Result<PerClinic<ReminderWindows>, ConfigError> {
    let invalid = |name: &str| {
        let name = name.to_owned();
        move |reason: String| ConfigError::Invalid { name, reason }
    };
    let default: ReminderWindows =
        env.get("REMINDER_WINDOWS").unwrap_or("24h,1h,10m").parse().map_err(invalid("REMINDER_WINDOWS"))?;
    PerClinic::parse(default, env.get("CLINIC_REMINDER_WINDOWS").unwrap_or(""))
        .map_err(invalid("CLINIC_REMINDER_WINDOWS"))
}

/// Config, the room store and the clock, built once per container.
#[derive(Debug, Clone)]
pub struct Rooms {
    pub config: RoomsConfig,
    pub store: RoomStore,
    pub clock: Clock,
}

impl Rooms {
    pub fn new(config: RoomsConfig, sdk: &SdkConfig) -> Self {
        let store = RoomStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table_name.clone());
        Self { config, store, clock: Clock::system() }
    }

    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(RoomsConfig::from_env(env)?, sdk))
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Creates the room for its appointment (see `RoomStore::create`), with
    /// its reminders' due entries in the same transaction.
    pub async fn create(
        &self,
        room: &Room,
        fingerprint: &str,
        event: &vcare_domain::events::DomainEvent,
    ) -> Result<vcare_store::Created, RoomError> {
        let windows = self.config.reminder_windows.of(&room.clinic_id);
        let dues = reminder_dues(&room.clinic_id, &room.room_id, room.scheduled_start, windows, self.now());
        Ok(self.store.create(room, fingerprint, event, &dues).await?)
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
    pub async fn room_for(&self, caller: &Caller, room_id: &str) -> Result<(Room, Standing), RoomError> {
        if !is_valid_external_id(room_id) {
            return Err(RoomError::NoSuchRoom);
        }
        let (room, _) = self.store.get(&caller.clinic_id, room_id).await?.ok_or(RoomError::NoSuchRoom)?;
        match standing(caller, &room) {
            Standing::Stranger => Err(RoomError::NoSuchRoom),
            s => Ok((room, s)),
        }
    }
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

/// `X-Jitsi-Shared-Secret` check for Jitsi's callbacks: 401 when missing or wrong.
pub fn check_jitsi_secret(secret: &vcare_jitsi::WebhookSecret, presented: Option<&[u8]>) -> Result<(), RoomError> {
    if secret.matches(presented) {
        Ok(())
    } else {
        tracing::warn!("a Jitsi callback without the right shared secret was refused");
        Err(RoomError::BadSharedSecret)
    }
}

/// The webhook secret from `JITSI_WEBHOOK_SECRET_CIPHERTEXT`, decrypted once.
pub async fn webhook_secret(env: &Env, sdk: &SdkConfig) -> Result<vcare_jitsi::WebhookSecret, vcare_runtime::Error> {
    let ciphertext = env.required("JITSI_WEBHOOK_SECRET_CIPHERTEXT")?;
    Ok(vcare_jitsi::WebhookSecret::decrypt(&aws_sdk_kms::Client::new(sdk), &ciphertext).await?)
}

/// Only the room's listed participants may do this: staff who are not
/// listed get 403 (they may see the room), strangers never get here (404).
pub fn participant_only(standing: Standing) -> Result<(), RoomError> {
    match standing {
        Standing::Participant(_) => Ok(()),
        _ => Err(RoomError::ParticipantsOnly),
    }
}
