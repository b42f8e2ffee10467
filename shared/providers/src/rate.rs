//! Per-container send pacing per provider.

use std::time::Duration;

/// A per-container token bucket for one provider: `per_second` sends, with
/// bursts up to one second's worth. Lambda runs many containers; their
/// number is bounded by the function's reserved concurrency, so the
/// provider sees at most that many times this rate.
pub struct RateLimiter {
    per_second: f64,
    state: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> Self {
        Self {
            per_second: per_second.max(0.001),
            state: std::sync::Mutex::new((per_second.max(1.0), std::time::Instant::now())),
        }
    }

    /// Takes a send slot: how long the caller must wait before it may send
    /// (zero when a slot is free now). The slot is reserved either way.
    pub fn acquire(&self) -> Duration {
        self.acquire_at(std::time::Instant::now())
    }

    pub fn acquire_at(&self, now: std::time::Instant) -> Duration {
        let mut state = self.state.lock().expect("lock");
        let (tokens, last) = *state;
        let refilled = (tokens + now.saturating_duration_since(last).as_secs_f64() * self.per_second)
            .min(self.per_second.max(1.0));
        let after = refilled - 1.0;
        *state = (after, now);
        if after >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-after / self.per_second) }
    }
}

/// `PROVIDER_RATE_LIMITS`, e.g. `gateway=20,twilio=10` (sends per second per
/// container); providers not named are not limited here (their 429s still are).
pub fn rate_limits(
    env: &vcare_runtime::Env,
) -> Result<std::collections::HashMap<String, RateLimiter>, vcare_runtime::ConfigError> {
    let mut out = std::collections::HashMap::new();
    for pair in env.get("PROVIDER_RATE_LIMITS").unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty())
    {
        let bad = || vcare_runtime::ConfigError::Invalid {
            name: "PROVIDER_RATE_LIMITS".into(),
            reason: "name=per-second pairs, like gateway=20".into(),
        };
        let (name, rate) = pair.split_once('=').ok_or_else(bad)?;
        let rate: f64 = rate.trim().parse().map_err(|_| bad())?;
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(bad());
        }
        out.insert(name.trim().to_owned(), RateLimiter::new(rate));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_paces() {
        let limiter = RateLimiter::new(2.0);
        let t0 = std::time::Instant::now();
        assert_eq!(limiter.acquire_at(t0), Duration::ZERO);
        assert_eq!(limiter.acquire_at(t0), Duration::ZERO, "a burst of one second's worth");
        assert_eq!(limiter.acquire_at(t0), Duration::from_millis(500), "then one slot every 1/2 s");
        assert_eq!(limiter.acquire_at(t0), Duration::from_millis(1000));
        // Two seconds later the debt is paid and one slot is free again.
        assert_eq!(limiter.acquire_at(t0 + Duration::from_secs(2)), Duration::ZERO);
    }

    #[test]
    fn limits_parse_or_fail_clearly() {
        let env = |v: &str| vcare_runtime::Env::from_map([("PROVIDER_RATE_LIMITS".to_owned(), v.to_owned())].into());
        let limits = rate_limits(&env("gateway=20, twilio=1.5")).unwrap();
        assert_eq!(limits.len(), 2);
        for bad in ["gateway", "gateway=fast", "gateway=0", "gateway=-1"] {
            assert!(rate_limits(&env(bad)).is_err(), "{bad}");
        }
    }
}
