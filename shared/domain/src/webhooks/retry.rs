//! When a failed delivery is tried again: exponential backoff with full
//! jitter over about 24 hours (the delay before try `n + 1`, jittered
//! between half and all of it), then the delivery is given up.
//!
//! | after try | waits (before jitter) | since the first try, at most |
//! |---|---|---|
//! | 1 | 5 s | 5 s |
//! | 2 | 30 s | 35 s |
//! | 3 | 2 min | 2.6 min |
//! | 4 | 10 min | 12.6 min |
//! | 5 | 30 min | 43 min |
//! | 6 | 1 h | 1.7 h |
//! | 7 | 2 h | 3.7 h |
//! | 8 | 4 h | 7.7 h |
//! | 9 | 8 h | 15.7 h |
//! | 10 | 8 h | 23.7 h |
//! | 11 | given up | |

use chrono::{DateTime, Duration, Utc};

/// The delay after each failed try, in seconds.
pub const RETRY_DELAYS: [i64; 10] = [5, 30, 120, 600, 1800, 3600, 7200, 14_400, 28_800, 28_800];

/// When try `tries + 1` is due after `tries` failed tries ending at `now`;
/// `None` once the schedule is spent. `jitter` in [0, 1) picks the point
/// between half and all of the delay (a clinic's endpoints coming back
/// are not all hit at once).
pub fn next_attempt(tries: usize, now: DateTime<Utc>, jitter: f64) -> Option<DateTime<Utc>> {
    let delay = *RETRY_DELAYS.get(tries.checked_sub(1)?)?;
    let jitter = jitter.clamp(0.0, 1.0);
    let millis = (delay as f64 * 1000.0 * (0.5 + jitter / 2.0)) as i64;
    Some(now + Duration::milliseconds(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spans_about_a_day_and_then_gives_up() {
        let now = Utc::now();
        let total: i64 = RETRY_DELAYS.iter().sum();
        assert!((23 * 3600..=24 * 3600).contains(&total), "{total} s");
        assert_eq!(next_attempt(1, now, 1.0), Some(now + Duration::seconds(5)));
        assert_eq!(next_attempt(1, now, 0.0), Some(now + Duration::milliseconds(2500)));
        assert_eq!(next_attempt(10, now, 1.0), Some(now + Duration::hours(8)));
        assert_eq!(next_attempt(11, now, 0.5), None, "given up after 11 tries");
        assert_eq!(next_attempt(0, now, 0.5), None, "nothing failed yet");
        let grows: Vec<i64> = RETRY_DELAYS.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(grows.iter().all(|d| *d >= 0), "never shorter");
    }
}
