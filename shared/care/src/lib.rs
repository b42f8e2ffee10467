//! The virtual-care functions' common ground: config read once, the room
//! store, the caller's standing towards a room, and the room's API view.

pub mod audit;
pub mod audit_export;
pub mod audit_seal;
pub mod dial_in;
pub mod end_meeting;
mod error;
pub mod fhir_sync;
pub mod images;
pub mod links;
pub mod recordings;
pub mod tokens;
pub mod video;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use vcare_aws::SdkConfig;
use vcare_domain::appointment::reminder_dues;
use vcare_domain::caller::{Caller, Role};
use vcare_domain::clinic::{PerClinic, ReminderWindows};
use vcare_domain::dial_in::DialInNumbers;
use vcare_domain::events::{CONSULTATION_ENDED, CONSULTATION_STARTED, DomainEvent};
use vcare_domain::ids::is_valid_external_id;
use vcare_domain::room::{JoinPolicy, Room, SessionChange, SessionEvent, Standing};
use vcare_domain::video::ProviderKind;
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
    /// Each clinic's video provider (`CLINIC_VIDEO_PROVIDERS`, like
    /// `c-1=openvidu;c-2=jitsi`; others `VIDEO_PROVIDER_DEFAULT`, jitsi).
    pub providers: PerClinic<ProviderKind>,
    /// Set when `OPENVIDU_URL` is.
    pub openvidu: Option<OpenViduSettings>,
    /// Each clinic's dial-in numbers (`CLINIC_DIAL_IN_NUMBERS`, like
    /// `c-1=AF:+93201234567,+93201234568;c-2=DE:+4930123`); a clinic
    /// without numbers has no dial-in.
    pub dial_in: PerClinic<DialInNumbers>,
}

/// Where OpenVidu is and how its rooms are made (API.md "Video providers").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenViduSettings {
    /// `OPENVIDU_URL`: the server's https base (http for the local stack).
    pub url: String,
    /// Its wss form, what clients connect to.
    pub server_url: String,
    /// `OPENVIDU_API_KEY`: the token's `iss`.
    pub api_key: String,
    /// `OPENVIDU_EMPTY_TIMEOUT_SECONDS` (300) and
    /// `OPENVIDU_DEPARTURE_TIMEOUT_SECONDS` (60): how long LiveKit keeps a
    /// room nobody joined, and one everyone left.
    pub empty_timeout_seconds: u32,
    pub departure_timeout_seconds: u32,
    /// `OPENVIDU_MEET_URL`: the clinic's web client for OpenVidu rooms, which
    /// join links and reminders open with `#url=<serverUrl>&token=<token>`
    /// (in the fragment, so that no server's log sees the token).
    pub meet_url: Option<String>,
}

impl OpenViduSettings {
    /// `None` without `OPENVIDU_URL`. With it, the key is required and the
    /// URL must be http(s) with a host.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(url) = env.get("OPENVIDU_URL") else { return Ok(None) };
        let invalid = |reason: &str| ConfigError::Invalid { name: "OPENVIDU_URL".into(), reason: reason.into() };
        let url = url.trim_end_matches('/').to_owned();
        let server_url = if let Some(rest) = url.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = url.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            return Err(invalid("the server's https base, like https://openvidu.example.org"));
        };
        if server_url.split("://").nth(1).is_none_or(str::is_empty) {
            return Err(invalid("the server's https base, like https://openvidu.example.org"));
        }
        Ok(Some(Self {
            url,
            server_url,
            api_key: env.required("OPENVIDU_API_KEY")?,
            empty_timeout_seconds: env.bounded("OPENVIDU_EMPTY_TIMEOUT_SECONDS", 300, 10, 86_400)?,
            departure_timeout_seconds: env.bounded("OPENVIDU_DEPARTURE_TIMEOUT_SECONDS", 60, 0, 86_400)?,
            meet_url: env.get("OPENVIDU_MEET_URL").map(|u| u.trim_end_matches('#').to_owned()),
        }))
    }
}

/// `VIDEO_PROVIDER_DEFAULT` and `CLINIC_VIDEO_PROVIDERS`. A provider that is
/// selected must be configured: a clinic on OpenVidu without `OPENVIDU_URL`
/// fails the cold start by name, so that a deployment finds out when it
/// deploys, not when a patient's room is made.
pub fn video_providers(env: &Env, openvidu: bool) -> Result<PerClinic<ProviderKind>, ConfigError> {
    let invalid = |name: &str| {
        let name = name.to_owned();
        move |reason: String| ConfigError::Invalid { name, reason }
    };
    let default: ProviderKind =
        env.get("VIDEO_PROVIDER_DEFAULT").unwrap_or("jitsi").parse().map_err(invalid("VIDEO_PROVIDER_DEFAULT"))?;
    let providers = PerClinic::parse(default, env.get("CLINIC_VIDEO_PROVIDERS").unwrap_or(""))
        .map_err(invalid("CLINIC_VIDEO_PROVIDERS"))?;
    let selected =
        providers.default == ProviderKind::Openvidu || providers.clinics.values().any(|p| *p == ProviderKind::Openvidu);
    if selected && !openvidu {
        return Err(ConfigError::Missing("OPENVIDU_URL".into()));
    }
    Ok(providers)
}

impl RoomsConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let minutes = |name: &str, default: i64| env.bounded(name, default, 0, 24 * 60).map(Duration::minutes);
        let jitsi_domain = env.required("JITSI_DOMAIN")?.to_lowercase();
        let openvidu = OpenViduSettings::from_env(env)?;
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
            providers: video_providers(env, openvidu.is_some())?,
            openvidu,
            dial_in: PerClinic::parse(DialInNumbers::default(), env.get("CLINIC_DIAL_IN_NUMBERS").unwrap_or(""))
                .map_err(|reason| ConfigError::Invalid { name: "CLINIC_DIAL_IN_NUMBERS".into(), reason })?,
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

    /// The due index (the rooms' reminders, end retries and checks).
    pub fn due(&self) -> vcare_store::DueStore {
        vcare_store::DueStore::new(self.store.client().clone(), self.store.table())
    }

    /// Creates the room for its appointment (see `RoomStore::create`), with
    /// its reminders' due entries (and an OpenVidu room's check when its
    /// window closes) in the same transaction.
    pub async fn create(
        &self,
        room: &Room,
        fingerprint: &str,
        event: &DomainEvent,
    ) -> Result<vcare_store::Created, RoomError> {
        let windows = self.config.reminder_windows.of(&room.clinic_id);
        let mut dues = reminder_dues(&room.clinic_id, &room.room_id, room.scheduled_start, windows, self.now());
        dues.extend(video::room_check(room, &self.config.join));
        // A Jitsi room of a clinic with numbers gets its PIN (Jigasi).
        let mut room = room.clone();
        if room.provider == ProviderKind::Jitsi && self.config.dial_in.of(&room.clinic_id).is_enabled() {
            room.dial_in_pin = Some(vcare_domain::dial_in::new_pin(vcare_domain::ids::random_u64()));
        }
        Ok(self.store.create(&room, fingerprint, event, &dues).await?)
    }

    pub fn join_url(&self, room: &Room) -> String {
        format!("https://{}/{}", self.config.jitsi_domain, room.jitsi_room)
    }

    /// The provider a new room of `clinic` runs on: the one the request
    /// named, else the clinic's. Naming one the deployment lacks is a 422.
    pub fn provider_for(&self, clinic: &str, requested: Option<ProviderKind>) -> Result<ProviderKind, RoomError> {
        let kind = requested.unwrap_or(*self.config.providers.of(clinic));
        if kind == ProviderKind::Openvidu && self.config.openvidu.is_none() {
            return Err(vcare_domain::Rejected::Impossible("provider: openvidu is not configured here".into()).into());
        }
        Ok(kind)
    }

    /// The room as API.md shows it: a Jitsi room's meeting URL, an
    /// OpenVidu room's server URL; not whether its provider room is made,
    /// nor its waiting room.
    pub fn view(&self, room: &Room) -> Value {
        let mut v = serde_json::to_value(room).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            // Internal: the provider room's state and the waiting room
            // (who waits is for the room's clinicians, `GET .../waiting`).
            for internal in ["prepared", "waiting", "admitted", "recordingConsents", "dialInPin"] {
                o.remove(internal);
            }
        }
        match (room.provider, &self.config.openvidu) {
            (ProviderKind::Openvidu, Some(o)) => v["serverUrl"] = Value::String(o.server_url.clone()),
            (ProviderKind::Openvidu, None) => {}
            (ProviderKind::Jitsi, _) => v["joinUrl"] = Value::String(self.join_url(room)),
        }
        v
    }

    /// Applies a provider's session event (a first join, the room's end)
    /// by the rules of `Room::apply_session`, with its domain event:
    /// duplicates and reordering change nothing.
    pub async fn apply_session(&self, room: &Room, session: SessionEvent) -> Result<Option<Room>, RoomError> {
        let now = self.now();
        let updated = self
            .store
            .update(&room.clinic_id, &room.room_id, |current| {
                let (next, change) = current.apply_session(session)?;
                let kind = match change {
                    SessionChange::Started => Some(CONSULTATION_STARTED),
                    SessionChange::Ended => Some(CONSULTATION_ENDED),
                    SessionChange::Corrected => None,
                };
                let events = kind.map(|k| DomainEvent::about_room(k, &next, now)).into_iter().collect();
                Some((next, events))
            })
            .await?;
        Ok(updated.filter(|(_, changed)| *changed).map(|(room, _)| room))
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
