//! Where dispatch tries next, and when quiet hours let a message go.

use chrono::{DateTime, Utc};

use super::*;
use crate::clinic::QuietHours;

/// Where to try next: the request's channels in order, each channel's
/// providers in the configured order, skipping a provider that refused
/// permanently or has failed `max_tries` times. `None`: everything is
/// exhausted.
pub fn next_route<'a>(
    channels: &[Channel],
    attempts: &[Attempt],
    providers: &'a [(Channel, &'a str)],
    max_tries: usize,
) -> Option<(Channel, &'a str)> {
    let closed = |c: &&Channel| attempts.iter().any(|a| a.channel == **c && a.ends_channel);
    channels.iter().filter(|c| !closed(c)).find_map(|channel| {
        providers.iter().filter(|(c, _)| c == channel).find_map(|(c, p)| {
            let tried: Vec<_> = attempts.iter().filter(|a| a.channel == *c && a.provider == *p).collect();
            let dead = tried.iter().any(|a| a.permanent)
                || tried.iter().filter(|a| a.status == Status::Failed).count() >= max_tries;
            (!dead).then_some((*c, *p))
        })
    })
}

/// How many transient failures a route has had.
pub fn failures(attempts: &[Attempt], channel: Channel, provider: &str) -> usize {
    attempts.iter().filter(|a| a.channel == channel && a.provider == provider && a.status == Status::Failed).count()
}

/// Quiet hours: a `normal` message due in the clinic's quiet hours in the
/// recipient's time zone waits for their end; `high` goes now.
/// Returns when it may go, or `None` for now.
pub fn quiet_until(
    now: DateTime<Utc>,
    timezone: Option<&str>,
    priority: Priority,
    hours: QuietHours,
) -> Option<DateTime<Utc>> {
    use chrono::{TimeZone, Timelike};
    if priority == Priority::High || hours == QuietHours::NONE {
        return None;
    }
    let tz: chrono_tz::Tz = timezone?.parse().ok()?;
    let local = now.with_timezone(&tz);
    let hour = local.hour();
    if !hours.contains(hour) {
        return None;
    }
    let (start, end) = (hours.start, hours.end);
    let mut day = local.date_naive();
    if hour >= end && start > end {
        day = day.succ_opt()?;
    }
    let wake = tz.from_local_datetime(&day.and_hms_opt(end, 0, 0)?).earliest()?;
    Some(wake.with_timezone(&Utc))
}
