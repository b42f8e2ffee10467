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
    /// Ending a room's meeting at its provider failed; try again (`id`: the room).
    EndRetry,
    /// A room's join window closed: if the provider lost its end (a
    /// `room_finished` webhook never came), settle it from who is still
    /// there (`id`: the room).
    RoomCheck,
    /// A ready recording's retention ran out: delete it unless under
    /// legal hold (`id`: the recording).
    RecordingExpiry,
    /// An OpenVidu recording still starting or recording: ask LiveKit
    /// whether its egress ended without a webhook (`id`: the recording).
    EgressCheck,
}

impl DueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DueKind::Occurrence => "occurrence",
            DueKind::Release => "release",
            DueKind::Reminder => "reminder",
            DueKind::EndRetry => "end-retry",
            DueKind::RoomCheck => "room-check",
            DueKind::RecordingExpiry => "recording-expiry",
            DueKind::EgressCheck => "egress-check",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DueKind::Occurrence,
            DueKind::Release,
            DueKind::Reminder,
            DueKind::EndRetry,
            DueKind::RoomCheck,
            DueKind::RecordingExpiry,
            DueKind::EgressCheck,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Whether an entry missed by more than the catch-up is dropped: only
    /// what is pointless late (an occurrence, a reminder). Queuing an
    /// accepted notification, ending a meeting and settling a room are
    /// done however late.
    pub fn skips_when_late(self) -> bool {
        matches!(self, DueKind::Occurrence | DueKind::Reminder)
    }
}

/// Attempts at ending a meeting before it is left to an operator.
pub const END_ATTEMPTS: u32 = 12;

/// When to try ending a meeting again after `attempts` failed ones: 1, 2,
/// 4 … minutes, at most an hour apart; `None` after [`END_ATTEMPTS`].
pub fn end_retry_at(attempts: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (attempts < END_ATTEMPTS)
        .then(|| now + Duration::minutes(1i64 << attempts.saturating_sub(1).min(6)).min(Duration::hours(1)))
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
    } else if due.kind.skips_when_late() && now - due.at > catch_up {
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

    #[test]
    fn ending_is_retried_with_growing_gaps_then_left() {
        let now = at("2026-12-01T10:00:00Z");
        let gaps: Vec<i64> = (1..END_ATTEMPTS).map(|n| (end_retry_at(n, now).unwrap() - now).num_minutes()).collect();
        assert_eq!(gaps, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60]);
        assert_eq!(end_retry_at(END_ATTEMPTS, now), None);
        let late = Due { at: at("2026-12-01T01:00:00Z"), kind: DueKind::EndRetry, clinic: "c".into(), id: "r".into() };
        assert_eq!(judge(&late, now, Duration::minutes(60)), Verdict::Fire, "an end is retried however late");
        assert_eq!(DueKind::parse("room-check"), Some(DueKind::RoomCheck));
        assert_eq!(DueKind::parse("egress-check"), Some(DueKind::EgressCheck));
        assert_eq!(DueKind::parse("recording-expiry"), Some(DueKind::RecordingExpiry));
    }

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
