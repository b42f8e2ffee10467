//! Recurring schedules: a notification template sent to one recipient on
//! an RRULE in their time zone. The state here is pure; the scheduler
//! fires occurrences from the due index (`crate::due`).

mod recurrence;
mod request;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::consent::ReplyAction;
use crate::notification::{Channel, Priority, Recipient};

pub use recurrence::{MAX_RULE_CHARS, MIN_SPACING_MINUTES, Recurrence, timezone};
pub use request::{NewSchedule, ScheduleRequest};

/// How many occurrences a create answers, and a read.
pub const CREATED_OCCURRENCES: usize = 5;
pub const SHOWN_OCCURRENCES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleStatus {
    Active,
    Paused,
    /// No occurrence is left (COUNT or UNTIL reached).
    Ended,
}

/// How an occurrence was passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passed {
    Fired,
    /// Not sent: this many occurrences (too late, or refused at accept).
    Skipped(u64),
}

/// What each occurrence sends: personal data, kept sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Firing {
    pub recipient: Recipient,
    pub channels: Vec<Channel>,
    pub template: String,
    pub variables: BTreeMap<String, String>,
    pub category: Option<String>,
    pub priority: Priority,
    #[serde(default)]
    pub replies: Vec<ReplyAction>,
}

/// A schedule as stored: the rule in clear, the recipient and variables sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub schedule_id: String,
    pub clinic_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub status: ScheduleStatus,
    pub rrule: String,
    pub timezone: String,
    pub start: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    pub template: String,
    pub category: String,
    pub priority: Priority,
    pub channels: Vec<Channel>,
    /// The occurrence the due index holds for it (none when paused or ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<DateTime<Utc>>,
    pub fired_count: u64,
    pub skipped_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sealed_firing: String,
}

impl Schedule {
    pub fn recurrence(&self) -> Result<Recurrence, crate::Rejected> {
        Recurrence::parse(&self.rrule, timezone(&self.timezone)?, self.start, self.until)
    }

    /// After `occurrence` was `passed` (fired, or skipped with the other
    /// missed ones): the next one is `next`. Only the occurrence the
    /// schedule waits for moves it, so an overlapping run that fires it
    /// again changes nothing.
    pub fn advanced(
        &self,
        occurrence: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        passed: Passed,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        if self.status != ScheduleStatus::Active || self.next_at != Some(occurrence) {
            return None;
        }
        let mut s = self.clone();
        s.next_at = next;
        match passed {
            Passed::Fired => {
                s.fired_count += 1;
                s.last_fired_at = Some(occurrence);
            }
            Passed::Skipped(n) => s.skipped_count += n,
        }
        if next.is_none() {
            s.status = ScheduleStatus::Ended;
        }
        s.updated_at = now;
        Some(s)
    }

    /// Paused: nothing fires until resumed.
    pub fn paused(&self, now: DateTime<Utc>) -> Option<Self> {
        (self.status == ScheduleStatus::Active).then(|| Self {
            status: ScheduleStatus::Paused,
            next_at: None,
            updated_at: now,
            ..self.clone()
        })
    }

    /// Active again from `next` (the first occurrence after now: missed
    /// ones are not replayed).
    pub fn resumed(&self, next: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Self> {
        (self.status == ScheduleStatus::Paused).then(|| Self {
            status: if next.is_some() { ScheduleStatus::Active } else { ScheduleStatus::Ended },
            next_at: next,
            updated_at: now,
            ..self.clone()
        })
    }

    /// The idempotency key of an occurrence's notification.
    pub fn occurrence_key(&self, occurrence: DateTime<Utc>) -> String {
        format!("schedule:{}:{}", self.schedule_id, occurrence.format("%Y-%m-%dT%H:%M:%SZ"))
    }
}

#[cfg(test)]
mod tests;
