//! The body of `POST /v1/communication/schedules`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::recurrence::MAX_START_AGE_DAYS;
use super::{Firing, Recurrence, timezone};
use crate::Rejected;
use crate::consent::ReplyAction;
use crate::notification::{Channel, NotificationRequest, Priority, Recipient};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleRequest {
    pub recipient: Recipient,
    pub channels: Vec<Channel>,
    pub template: String,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub priority: Priority,
    pub rrule: String,
    pub timezone: String,
    pub start: String,
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub replies: Vec<ReplyAction>,
}

/// A schedule request that passed its rules: what fires, and when.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    pub firing: Firing,
    pub recurrence: Recurrence,
}

impl Firing {
    /// The notification request an occurrence makes (the normal accept path).
    pub fn request(&self) -> NotificationRequest {
        NotificationRequest {
            recipient: self.recipient.clone(),
            channels: self.channels.clone(),
            template: Some(self.template.clone()),
            variables: self.variables.clone(),
            content: None,
            priority: self.priority,
            send_at: None,
            category: self.category.clone(),
            context: None,
            replies: self.replies.clone(),
            template_version: None,
        }
    }
}

impl ScheduleRequest {
    /// The rule checked in its time zone; the rest is checked as a
    /// notification request is (the caller does that, with the same rules
    /// accept uses).
    pub fn parse(self, now: DateTime<Utc>) -> Result<NewSchedule, Rejected> {
        let tz = timezone(&self.timezone)?;
        let start = crate::room::parse_time("start", &self.start)?;
        let until = self.until.as_deref().map(|u| crate::room::parse_time("until", u)).transpose()?;
        if until.is_some_and(|u| u <= now) {
            return Err(Rejected::Impossible("until is in the past".into()));
        }
        if start < now - chrono::Duration::days(MAX_START_AGE_DAYS) {
            return Err(Rejected::Invalid(format!("start: at most {MAX_START_AGE_DAYS} days before now")));
        }
        let recurrence = Recurrence::parse(&self.rrule, tz, start, until)?;
        if recurrence.next_after(now).is_none() {
            return Err(Rejected::Impossible("rrule: no occurrence is left after now".into()));
        }
        let firing = Firing {
            recipient: self.recipient,
            channels: self.channels,
            template: self.template,
            variables: self.variables,
            category: self.category,
            priority: self.priority,
            replies: self.replies,
        };
        Ok(NewSchedule { firing, recurrence })
    }
}
