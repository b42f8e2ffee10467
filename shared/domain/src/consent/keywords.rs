//! What an inbound SMS says: a keyword (STOP, START, HELP and the CTIA
//! words with them), a reply to a message that offered replies, or free
//! text. The whole trimmed message counts, in any case; a clinic may add
//! words per locale (`CLINIC_KEYWORDS`), which also tell the language the
//! answer goes in.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A keyword every number understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keyword {
    Stop,
    Start,
    Help,
}

/// A reply a message may offer (`replies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyAction {
    Confirm,
    Reschedule,
    Cancel,
}

impl ReplyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Reschedule => "reschedule",
            Self::Cancel => "cancel",
        }
    }
}

/// What an inbound message means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    Keyword { keyword: Keyword, locale: Option<String> },
    Reply { action: ReplyAction, locale: Option<String> },
    Text,
}

const STOP: &[&str] = &["stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke"];
const START: &[&str] = &["start", "unstop"];
const HELP: &[&str] = &["help", "info"];
const CONFIRM: &[&str] = &["c", "1"];
const RESCHEDULE: &[&str] = &["r", "2"];
const CANCEL: &[&str] = &["x", "3"];

/// One word a clinic adds: its locale, what it means, the word itself
/// (lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicWord {
    pub locale: String,
    pub meaning: Meaning,
    pub word: String,
}

/// What a clinic's word means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    Keyword(Keyword),
    Reply(ReplyAction),
}

/// A clinic's own words: `fa/stop:لغو|توقف,fa/confirm:بله`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClinicWords(pub Vec<ClinicWord>);

impl FromStr for ClinicWords {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || "LOCALE/MEANING:WORD|WORD, like fa/stop:لغو".to_owned();
            let (head, list) = part.split_once(':').ok_or_else(bad)?;
            let (locale, meaning) = head.split_once('/').ok_or_else(bad)?;
            if !crate::notification::is_locale(locale.trim()) {
                return Err(bad());
            }
            let meaning = match meaning.trim() {
                "stop" => Meaning::Keyword(Keyword::Stop),
                "start" => Meaning::Keyword(Keyword::Start),
                "help" => Meaning::Keyword(Keyword::Help),
                "confirm" => Meaning::Reply(ReplyAction::Confirm),
                "reschedule" => Meaning::Reply(ReplyAction::Reschedule),
                "cancel" => Meaning::Reply(ReplyAction::Cancel),
                _ => return Err("MEANING is one of stop, start, help, confirm, reschedule, cancel".into()),
            };
            for word in list.split('|').map(normalise).filter(|w| !w.is_empty()) {
                if word.chars().count() > 32 {
                    return Err("a word has at most 32 characters".into());
                }
                words.push(ClinicWord { locale: locale.trim().to_owned(), meaning, word });
            }
        }
        Ok(ClinicWords(words))
    }
}

/// The message as keywords are matched: trimmed, lower case, trailing
/// `.` and `!` dropped.
fn normalise(text: &str) -> String {
    text.trim().trim_end_matches(['.', '!']).trim().to_lowercase()
}

/// What `text` says, with the clinic's own words first (they may give the
/// language of the answer).
pub fn classify(text: &str, clinic: &ClinicWords) -> Said {
    let said = normalise(text);
    if let Some(w) = clinic.0.iter().find(|w| w.word == said) {
        let locale = Some(w.locale.clone());
        return match w.meaning {
            Meaning::Keyword(keyword) => Said::Keyword { keyword, locale },
            Meaning::Reply(action) => Said::Reply { action, locale },
        };
    }
    let is = |list: &[&str]| list.contains(&said.as_str());
    let keyword = |keyword| Said::Keyword { keyword, locale: None };
    let reply = |action| Said::Reply { action, locale: None };
    if is(STOP) {
        keyword(Keyword::Stop)
    } else if is(START) {
        keyword(Keyword::Start)
    } else if is(HELP) {
        keyword(Keyword::Help)
    } else if is(CONFIRM) {
        reply(ReplyAction::Confirm)
    } else if is(RESCHEDULE) {
        reply(ReplyAction::Reschedule)
    } else if is(CANCEL) {
        reply(ReplyAction::Cancel)
    } else {
        Said::Text
    }
}
