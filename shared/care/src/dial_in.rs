//! Dial-in by phone through Jigasi (API.md "Recordings and dial-in"):
//! Jitsi's conference mapper both ways (the meeting page asks a room's PIN
//! by its conference, Jigasi a PIN's conference) and the phone-number
//! list. A PIN resolves only inside its room's join window, and PIN
//! lookups that find nothing are counted per source and minute: past
//! `DIAL_IN_MISSES_PER_MINUTE` (30) every PIN lookup of that source is
//! refused for the rest of the minute, so guessing one of 9·10⁹ PINs takes
//! years, and a guesser elsewhere cannot lock a clinic's callers out. The
//! source is the caller's address, or Jigasi itself when the request
//! carries the Jitsi shared secret (counted apart from every address).

use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_domain::dial_in::{DialInNumbers, conference_jid, conference_room, mapper_answer, numbers_answer, parse_pin};
use vcare_domain::room::Room;
use vcare_domain::video::ProviderKind;
use vcare_runtime::Env;

use crate::{RoomError, Rooms};

pub struct DialIn {
    pub care: Rooms,
    misses_per_minute: u64,
    /// `X-Jitsi-Shared-Secret`, which Jigasi can be set to send.
    jigasi: vcare_jitsi::WebhookSecret,
}

/// Who is looking a PIN up, as counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// Jigasi, by the shared secret.
    Jigasi,
    /// Anyone else, by address.
    Address(String),
}

impl PinSource {
    fn counted_as(&self) -> String {
        match self {
            Self::Jigasi => "jigasi".to_owned(),
            Self::Address(ip) => format!("ip:{ip}"),
        }
    }
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
    /// Settings first (a bad one fails by name), then the shared secret.
    pub async fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, vcare_runtime::Error> {
        let care = Rooms::from_env(env, sdk)?;
        let misses_per_minute = env.bounded("DIAL_IN_MISSES_PER_MINUTE", 30, 1, 10_000)?;
        Ok(Self { care, misses_per_minute, jigasi: crate::webhook_secret(env, sdk).await? })
    }

    /// Who asks: Jigasi if `secret` (the request's `X-Jitsi-Shared-Secret`)
    /// is right, else the caller's address.
    pub fn source(&self, secret: Option<&[u8]>, address: &str) -> PinSource {
        match secret.is_some_and(|s| self.jigasi.matches(Some(s))) {
            true => PinSource::Jigasi,
            false => PinSource::Address(address.to_owned()),
        }
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
    /// malformed PIN is 400 and never looked up. Each lookup first takes a
    /// place in its source's misses of the minute (one conditional write,
    /// with the PIN's read beside it); none left is 429 whatever the PIN,
    /// and a lookup that finds its room gives its place back.
    pub async fn by_pin(&self, raw: &str, source: &PinSource) -> Result<PinAnswer, RoomError> {
        let pin = parse_pin(raw).ok_or_else(|| {
            vcare_domain::Rejected::Invalid(format!("id: a PIN of {} digits", vcare_domain::dial_in::PIN_DIGITS))
        })?;
        let now = self.care.now();
        let counted = source.counted_as();
        let (taken, found) = tokio::join!(
            self.care.store.take_dial_in_miss(&counted, now, self.misses_per_minute),
            self.care.store.dial_in_pin(pin)
        );
        if !taken? {
            vcare_runtime::metrics::count("DialInLookupsRefused", &[]);
            return Ok(PinAnswer::TooMany);
        }
        if let Some((clinic, room_id)) = found?
            && let Some((room, _)) = self.care.store.get(&clinic, &room_id).await?
            && self.pin_now(&room) == Some(pin)
        {
            self.care.store.give_back_dial_in_miss(&counted, now).await?;
            return Ok(PinAnswer::Found(mapper_answer(
                &conference_jid(&room.jitsi_room, &self.care.config.jitsi_domain),
                pin,
            )));
        }
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
