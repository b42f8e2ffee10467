//! Dial-in by phone through Jigasi (API.md "Recordings and dial-in"):
//! Jitsi's conference mapper both ways (the meeting page asks a room's PIN
//! by its conference, Jigasi a PIN's conference) and the phone-number
//! list. A PIN resolves only inside its room's join window, and PIN
//! lookups that find nothing are counted per minute: past
//! `DIAL_IN_MISSES_PER_MINUTE` (30) every PIN lookup is refused for the
//! rest of the minute, so guessing one of 9·10⁹ PINs takes years.

use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_domain::dial_in::{DialInNumbers, conference_jid, conference_room, mapper_answer, numbers_answer, parse_pin};
use vcare_domain::room::Room;
use vcare_domain::video::ProviderKind;
use vcare_runtime::{ConfigError, Env};

use crate::{RoomError, Rooms};

pub struct DialIn {
    pub care: Rooms,
    misses_per_minute: u64,
}

/// What a PIN lookup answers.
#[derive(Debug, Clone, PartialEq)]
pub enum PinAnswer {
    /// Jitsi's mapping.
    Found(Value),
    /// No room has it, or not now (the same answer either way).
    NotFound,
    /// Too many lookups found nothing this minute (429).
    TooMany,
}

impl DialIn {
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            care: Rooms::from_env(env, sdk)?,
            misses_per_minute: env.bounded("DIAL_IN_MISSES_PER_MINUTE", 30, 1, 10_000)?,
        })
    }

    fn numbers_of(&self, room: &Room) -> &DialInNumbers {
        self.care.config.dial_in.of(&room.clinic_id)
    }

    /// The room's PIN, if it has one its clinic's numbers serve and its
    /// join window is open now.
    fn pin_now(&self, room: &Room) -> Option<u64> {
        let open = room.joinable(&self.care.config.join, self.care.now()).is_ok();
        (room.provider == ProviderKind::Jitsi && open && self.numbers_of(room).is_enabled())
            .then_some(room.dial_in_pin)
            .flatten()
    }

    async fn room_of_conference(&self, jid: &str) -> Result<Option<Room>, RoomError> {
        let Some(name) = conference_room(jid, &self.care.config.jitsi_domain) else { return Ok(None) };
        Ok(self.care.store.by_jitsi_room(&name.to_lowercase()).await?.map(|(r, _)| r))
    }

    /// `?conference=<room>@conference.<domain>`: the room's PIN, in its
    /// join window.
    pub async fn by_conference(&self, jid: &str) -> Result<Option<Value>, RoomError> {
        let Some(room) = self.room_of_conference(jid).await? else { return Ok(None) };
        Ok(self
            .pin_now(&room)
            .map(|pin| mapper_answer(&conference_jid(&room.jitsi_room, &self.care.config.jitsi_domain), pin)))
    }

    /// `?id=<pin>`: the PIN's conference, in its room's join window. A
    /// malformed PIN is 400 and never looked up.
    pub async fn by_pin(&self, raw: &str) -> Result<PinAnswer, RoomError> {
        let pin = parse_pin(raw).ok_or_else(|| {
            vcare_domain::Rejected::Invalid(format!("id: a PIN of {} digits", vcare_domain::dial_in::PIN_DIGITS))
        })?;
        let now = self.care.now();
        let lookup = self.care.store.dial_in_pin(pin, now).await?;
        if lookup.misses >= self.misses_per_minute {
            vcare_runtime::metrics::count("DialInLookupsRefused", &[]);
            return Ok(PinAnswer::TooMany);
        }
        if let Some((clinic, room_id)) = &lookup.room
            && let Some((room, _)) = self.care.store.get(clinic, room_id).await?
            && self.pin_now(&room) == Some(pin)
        {
            return Ok(PinAnswer::Found(mapper_answer(
                &conference_jid(&room.jitsi_room, &self.care.config.jitsi_domain),
                pin,
            )));
        }
        self.care.store.count_dial_in_miss(now).await?;
        vcare_runtime::metrics::count("DialInLookupsMissed", &[]);
        Ok(PinAnswer::NotFound)
    }

    /// `?conference=`: the numbers of the room's clinic, or none.
    pub async fn numbers(&self, jid: &str) -> Result<Value, RoomError> {
        let none = DialInNumbers::default();
        let room = self.room_of_conference(jid).await?;
        let numbers = match &room {
            Some(r) if r.provider == ProviderKind::Jitsi && r.dial_in_pin.is_some() => self.numbers_of(r),
            _ => &none,
        };
        Ok(numbers_answer(numbers))
    }
}

/// What a token response shows for dial-in: the clinic's numbers and the
/// room's PIN, when both exist.
pub fn token_dial_in(care: &Rooms, room: &Room) -> Option<Value> {
    let numbers = care.config.dial_in.of(&room.clinic_id);
    let pin = room.dial_in_pin.filter(|_| numbers.is_enabled() && room.provider == ProviderKind::Jitsi)?;
    Some(json!({"numbers": numbers.view(), "pin": pin.to_string()}))
}
