//! A recipient's preferences as stored, shown and changed. A change is
//! checked as a whole before anything is kept, and every channel or
//! category it turns on or off becomes a line of the consent history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::{CATEGORIES, ConsentEntry, ConsentSource};
use crate::Rejected;
use crate::clinic::QuietHours;
use crate::notification::Channel;

const ALL_CHANNELS: [Channel; 3] = [Channel::Sms, Channel::Email, Channel::Push];

/// A recipient's preferences. A channel or category not named is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    #[serde(default)]
    pub channels: BTreeMap<Channel, bool>,
    #[serde(default)]
    pub categories: BTreeMap<String, BTreeMap<Channel, bool>>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    /// `21-7` or `off`; `None`: the clinic's.
    #[serde(default)]
    pub quiet_hours: Option<String>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Preferences {
    /// Whether a message of `category` may go on `channel`.
    pub fn allows(&self, channel: Channel, category: &str) -> bool {
        self.channels.get(&channel).copied().unwrap_or(true)
            && self.categories.get(category).and_then(|c| c.get(&channel)).copied().unwrap_or(true)
    }

    /// What GET shows: every channel, defaults where never set.
    pub fn view(&self, user_id: &str) -> serde_json::Value {
        let channels: BTreeMap<&str, bool> =
            ALL_CHANNELS.iter().map(|c| (c.as_str(), self.channels.get(c).copied().unwrap_or(true))).collect();
        serde_json::json!({
            "userId": user_id,
            "channels": channels,
            "categories": self.categories,
            "locale": self.locale,
            "timezone": self.timezone,
            "quietHours": self.quiet_hours,
            "updatedAt": self.updated_at,
        })
    }
}

/// A member that may be given, given as `null` (cleared), or left out.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The body of `PUT .../preferences`: every member optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreferencesUpdate {
    #[serde(default)]
    pub channels: Option<BTreeMap<Channel, bool>>,
    #[serde(default)]
    pub categories: Option<BTreeMap<String, BTreeMap<Channel, bool>>>,
    #[serde(default, deserialize_with = "nullable")]
    pub locale: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub timezone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub quiet_hours: Option<Option<String>>,
    /// GET's own members, accepted so that a GET body can be PUT back.
    #[serde(default)]
    pub user_id: Option<serde_json::Value>,
    #[serde(default)]
    pub updated_at: Option<serde_json::Value>,
}

impl PreferencesUpdate {
    /// Checks every rule: known categories, a language tag, an IANA zone,
    /// quiet hours as `21-7` or `off`.
    pub fn validate(&self) -> Result<(), Rejected> {
        use Rejected::Invalid;
        for name in self.categories.iter().flat_map(|c| c.keys()) {
            if !CATEGORIES.contains(&name.as_str()) {
                return Err(Invalid(format!("categories: unknown category; one of {}", CATEGORIES.join(", "))));
            }
        }
        if let Some(Some(l)) = &self.locale
            && !crate::notification::is_locale(l)
        {
            return Err(Invalid("locale: a language tag, like fa-AF".into()));
        }
        if let Some(Some(z)) = &self.timezone
            && z.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(Invalid("timezone: an IANA time zone, like Asia/Kabul".into()));
        }
        if let Some(Some(q)) = &self.quiet_hours
            && q.parse::<QuietHours>().is_err()
        {
            return Err(Invalid("quietHours: START-END hours, like 21-7, or off".into()));
        }
        Ok(())
    }
}

/// The preferences after `update` (already validated), and the consent
/// history lines for every channel or category it turned on or off.
pub fn apply(
    current: &Preferences,
    update: &PreferencesUpdate,
    source: ConsentSource,
    by: &str,
    now: DateTime<Utc>,
) -> (Preferences, Vec<ConsentEntry>) {
    let mut next = current.clone();
    let mut history = Vec::new();
    let entry = |channel, category: Option<&str>, granted| ConsentEntry {
        at: now,
        channel: Some(channel),
        category: category.map(str::to_owned),
        granted,
        source,
        by: by.to_owned(),
        reason: None,
    };
    for (channel, on) in update.channels.iter().flatten() {
        if next.channels.get(channel).copied().unwrap_or(true) != *on {
            history.push(entry(*channel, None, *on));
        }
        next.channels.insert(*channel, *on);
    }
    for (category, channels) in update.categories.iter().flatten() {
        let kept = next.categories.entry(category.clone()).or_default();
        for (channel, on) in channels {
            if kept.get(channel).copied().unwrap_or(true) != *on {
                history.push(entry(*channel, Some(category), *on));
            }
            kept.insert(*channel, *on);
        }
    }
    if let Some(l) = &update.locale {
        next.locale = l.clone();
    }
    if let Some(z) = &update.timezone {
        next.timezone = z.clone();
    }
    if let Some(q) = &update.quiet_hours {
        next.quiet_hours = q.clone();
    }
    next.updated_at = Some(now);
    (next, history)
}
