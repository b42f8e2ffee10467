//! Joining a consultation by phone through Jigasi (API.md "Recordings and
//! dial-in"): the clinic's numbers (`ClinicDialInNumbers`), a room's PIN,
//! and the answers of Jitsi's conference mapper and phone-number list in
//! Jitsi's own formats (what jitsi-meet's `dialInConfCodeUrl` and
//! `dialInNumbersUrl`, and Jigasi, read).

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::{Value, json};

/// A PIN's digits: ten, the first never 0 (Jitsi's mapper answers the id
/// as a JSON number, which would lose a leading zero). 9 × 10⁹ PINs.
pub const PIN_DIGITS: usize = 10;
const PIN_LOW: u64 = 1_000_000_000;
const PIN_SPAN: u64 = 9_000_000_000;

/// A clinic's dial-in numbers by country (ISO 3166 alpha-2), as the
/// setting gives them: `AF:+93201234567,+93201234568`, more countries
/// after `|` (`AF:+9320…|DE:+4930…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialInNumbers(pub BTreeMap<String, Vec<String>>);

impl DialInNumbers {
    pub fn is_enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// The numbers as API.md's token response shows them.
    pub fn view(&self) -> Value {
        json!(self.0)
    }
}

fn is_e164(n: &str) -> bool {
    n.strip_prefix('+').is_some_and(|d| (6..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

impl FromStr for DialInNumbers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut by_country = BTreeMap::new();
        for part in s.split('|').map(str::trim).filter(|p| !p.is_empty()) {
            let (country, numbers) = part.split_once(':').ok_or("COUNTRY:+number,+number")?;
            let country = country.trim();
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err("a country is two capital letters (ISO 3166), like AF".into());
            }
            let numbers: Vec<String> = numbers.split(',').map(|n| n.trim().to_owned()).collect();
            if numbers.iter().any(|n| !is_e164(n)) {
                return Err("numbers are E.164, like +93201234567".into());
            }
            if by_country.insert(country.to_owned(), numbers).is_some() {
                return Err("a country given twice".into());
            }
        }
        Ok(Self(by_country))
    }
}

/// A new PIN from a random number.
pub fn new_pin(random: u64) -> u64 {
    PIN_LOW + random % PIN_SPAN
}

/// A PIN as Jigasi sends it (`?id=`): exactly [`PIN_DIGITS`] digits, not
/// starting with 0. Anything else is not a PIN (400, never a lookup).
pub fn parse_pin(raw: &str) -> Option<u64> {
    if raw.len() != PIN_DIGITS || !raw.bytes().all(|b| b.is_ascii_digit()) || raw.starts_with('0') {
        return None;
    }
    raw.parse().ok()
}

/// The room name in a conference's JID, `<room>@conference.<domain>`, if
/// it is one of this deployment's (`domain`, lowercase).
pub fn conference_room<'a>(jid: &'a str, domain: &str) -> Option<&'a str> {
    let (room, host) = jid.split_once('@')?;
    let muc = host.strip_prefix("conference.")?;
    (muc.eq_ignore_ascii_case(domain) && !room.is_empty() && room.len() <= 128).then_some(room)
}

/// The conference JID of a room.
pub fn conference_jid(room: &str, domain: &str) -> String {
    format!("{room}@conference.{domain}")
}

/// The mapper's answer, as jitsi-meet and Jigasi read it.
pub fn mapper_answer(conference: &str, pin: u64) -> Value {
    json!({"message": "Successfully retrieved conference mapping", "id": pin, "conference": conference})
}

/// The phone-number list's answer.
pub fn numbers_answer(numbers: &DialInNumbers) -> Value {
    if numbers.is_enabled() {
        json!({"message": "Phone numbers available.", "numbers": numbers.0, "numbersEnabled": true})
    } else {
        json!({"message": "No phone numbers for this conference.", "numbers": {}, "numbersEnabled": false})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_by_country_and_bad_ones_are_named() {
        let n: DialInNumbers = "AF:+93201234567,+93201234568|DE:+4930123456".parse().unwrap();
        assert_eq!(n.0["AF"], ["+93201234567", "+93201234568"]);
        assert_eq!(n.0["DE"], ["+4930123456"]);
        assert!(!"".parse::<DialInNumbers>().unwrap().is_enabled());
        for bad in [
            "af:+93201234567",
            "AF:93201234567",
            "AF",
            "AF:+9320abc",
            "AF:+93201234567|AF:+93201234568",
            "AFG:+93201234567",
        ] {
            assert!(bad.parse::<DialInNumbers>().is_err(), "{bad}");
        }
        let per = crate::clinic::PerClinic::parse(DialInNumbers::default(), "c-1=AF:+93201234567;c-2=DE:+4930123456")
            .unwrap();
        assert!(per.of("c-1").is_enabled() && !per.of("c-3").is_enabled());
    }

    #[test]
    fn pins_have_ten_digits_and_only_those_parse() {
        for r in [0, 1, u64::MAX, 8_999_999_999, 9_000_000_000] {
            let pin = new_pin(r);
            assert_eq!(pin.to_string().len(), PIN_DIGITS, "{r}");
            assert_eq!(parse_pin(&pin.to_string()), Some(pin));
        }
        for bad in
            ["", "123456789", "12345678901", "0123456789", "12345 6789", "+123456789", "１２３４５６７８９０", "1e9"]
        {
            assert_eq!(parse_pin(bad), None, "{bad}");
        }
    }

    #[test]
    fn conference_jids_are_this_deployments() {
        assert_eq!(conference_room("vc-abc@conference.meet.example.org", "meet.example.org"), Some("vc-abc"));
        assert_eq!(conference_room("vc-abc@conference.MEET.example.org", "meet.example.org"), Some("vc-abc"));
        for bad in ["vc-abc", "vc-abc@meet.example.org", "@conference.meet.example.org", "vc@conference.other.org"] {
            assert_eq!(conference_room(bad, "meet.example.org"), None, "{bad}");
        }
        assert_eq!(conference_jid("vc-abc", "meet.example.org"), "vc-abc@conference.meet.example.org");
    }

    #[test]
    fn answers_are_jitsis_formats() {
        let a = mapper_answer("vc-abc@conference.meet.example.org", 1234567890);
        assert_eq!(a["id"], 1234567890, "a number, not a string");
        assert_eq!(a["conference"], "vc-abc@conference.meet.example.org");
        let n: DialInNumbers = "AF:+93201234567".parse().unwrap();
        assert_eq!(numbers_answer(&n)["numbersEnabled"], true);
        assert_eq!(numbers_answer(&n)["numbers"]["AF"][0], "+93201234567");
        assert_eq!(numbers_answer(&DialInNumbers::default())["numbersEnabled"], false);
    }
}
