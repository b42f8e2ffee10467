//! Time as a dependency: each function's state holds a [`Clock`]; the
//! system clock in Lambda and the local gateway, a settable one in tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

/// Where "now" comes from.
#[derive(Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system time; `None`: the system time.
    offset: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { offset: None }
    }

    /// The system clock moved by an offset that tests may change while it
    /// is in use ([`Clock::advance`]).
    pub fn shifted(by: Duration) -> Self {
        Self { offset: Some(Arc::new(AtomicI64::new(by.num_milliseconds()))) }
    }

    /// Moves a shifted clock (and every copy of it) on by `by`; the system
    /// clock cannot be moved.
    pub fn advance(&self, by: Duration) {
        if let Some(offset) = &self.offset {
            offset.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        match &self.offset {
            None => now,
            Some(offset) => now + Duration::milliseconds(offset.load(Ordering::SeqCst)),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.offset {
            None => f.write_str("Clock(system)"),
            Some(o) => write!(f, "Clock(shifted {} ms)", o.load(Ordering::SeqCst)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_moves_with_every_copy() {
        let clock = Clock::shifted(Duration::days(1));
        let copy = clock.clone();
        let ahead = copy.now() - Utc::now();
        assert!(ahead > Duration::hours(23) && ahead <= Duration::days(1));
        clock.advance(Duration::days(1));
        assert!(copy.now() - Utc::now() > Duration::hours(47));
        let system = Clock::system();
        system.advance(Duration::days(1));
        assert!((system.now() - Utc::now()).num_seconds().abs() < 2, "the system clock stays");
    }
}
