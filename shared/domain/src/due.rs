//! The due index: one list of "do this at that instant" that the
//! scheduler reads every minute, for schedule occurrences, notifications
//! waiting for a far `sendAt`, and appointment reminders. A run reads what
//! is due up to its minute, never the whole list.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How far ahead a `sendAt` may be and still go straight to the queue
/// (SQS delays up to 15 minutes); further ones wait in the due index.
pub const QUEUE_DELAY_LIMIT_SECONDS: i64 = 900;
/// How long before its `sendAt` a waiting notification is queued.
pub const RELEASE_AHEAD_SECONDS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DueKind {
    /// An occurrence of a schedule (`id`: the schedule).
    Occurrence,
    /// A notification waiting for its `sendAt` (`id`: the notification).
    Release,
    /// An appointment reminder (`id`: `<roomId>#<window label>`).
    Reminder,
}

impl DueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DueKind::Occurrence => "occurrence",
            DueKind::Release => "release",
            DueKind::Reminder => "reminder",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [DueKind::Occurrence, DueKind::Release, DueKind::Reminder].into_iter().find(|k| k.as_str() == s)
    }
}

/// One entry: do `kind` for `id` of `clinic` at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub at: DateTime<Utc>,
    pub kind: DueKind,
    pub clinic: String,
    pub id: String,
}

/// What a run does with an entry it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Due, within the catch-up: do it now.
    Fire,
    /// Missed by more than the catch-up: drop it (a schedule moves on to
    /// its next occurrence), counted.
    Skip,
    /// Not due yet (read because the run looks to the end of its minute).
    Wait,
}

/// Judges an entry at `now`: what is due fires if it is at most
/// `catch_up` late; a waiting notification is never skipped (it was
/// accepted: late is better than lost).
pub fn judge(due: &Due, now: DateTime<Utc>, catch_up: Duration) -> Verdict {
    if due.at > now {
        Verdict::Wait
    } else if due.kind != DueKind::Release && now - due.at > catch_up {
        Verdict::Skip
    } else {
        Verdict::Fire
    }
}

/// Does a notification to be sent at `send_at` wait in the due index (rather
/// than as a delayed queue message), and until when?
pub fn release_at(send_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let at = send_at?;
    (at - now > Duration::seconds(QUEUE_DELAY_LIMIT_SECONDS)).then(|| at - Duration::seconds(RELEASE_AHEAD_SECONDS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn late_entries_fire_within_the_catch_up_and_skip_beyond_it_but_releases_never_skip() {
        let now = at("2026-12-01T10:00:30Z");
        let hour = Duration::minutes(60);
        let due = |t: &str, kind| Due { at: at(t), kind, clinic: "c".into(), id: "x".into() };
        assert_eq!(judge(&due("2026-12-01T10:00:00Z", DueKind::Occurrence), now, hour), Verdict::Fire);
        assert_eq!(judge(&due("2026-12-01T09:00:31Z", DueKind::Reminder), now, hour), Verdict::Fire);
        assert_eq!(judge(&due("2026-12-01T09:00:29Z", DueKind::Occurrence), now, hour), Verdict::Skip);
        assert_eq!(judge(&due("2026-11-01T09:00:00Z", DueKind::Release), now, hour), Verdict::Fire);
        assert_eq!(judge(&due("2026-12-01T10:00:31Z", DueKind::Occurrence), now, hour), Verdict::Wait);
    }

    #[test]
    fn only_far_send_ats_wait_in_the_index() {
        let now = at("2026-12-01T10:00:00Z");
        assert_eq!(release_at(None, now), None);
        assert_eq!(release_at(Some(at("2026-12-01T10:15:00Z")), now), None);
        assert_eq!(release_at(Some(at("2026-12-08T10:00:00Z")), now), Some(at("2026-12-08T09:55:00Z")));
    }
}
