//! The dispatcher built from its settings, checked at cold start.

use std::time::Duration;

use vcare_aws::SdkConfig;
use vcare_domain::clinic::{PerClinic, QuietHours};
use vcare_domain::lifecycle::{DispatchSettings, TimeBudget};
use vcare_providers::Wiring;
use vcare_runtime::{Clock, ConfigError, Env, Error};

use super::Dispatcher;
use crate::Notifications;

/// `QUIET_HOURS` for every clinic, `CLINIC_QUIET_HOURS` for the exceptions.
fn quiet_hours(env: &Env) -> Result<PerClinic<QuietHours>, ConfigError> {
    let invalid = |name: &str| {
        let name = name.to_owned();
        move |reason: String| ConfigError::Invalid { name, reason }
    };
    let default = env.get("QUIET_HOURS").unwrap_or("21-7").parse().map_err(invalid("QUIET_HOURS"))?;
    PerClinic::parse(default, env.get("CLINIC_QUIET_HOURS").unwrap_or("")).map_err(invalid("CLINIC_QUIET_HOURS"))
}

/// Checks at cold start that the claim timeout, the function's timeout and
/// the dispatch queue's visibility timeout and redrive fit together
/// ([`TimeBudget`]), reading the queue's own attributes: a deployment whose
/// settings could write off live work or dead-letter a waiting
/// notification does not start.
async fn check_time_budget(env: &Env, comms: &Notifications, claim_timeout_seconds: i64) -> Result<(), Error> {
    let limits = comms.queue_limits().await?;
    let budget = TimeBudget {
        claim_timeout_seconds,
        function_timeout_seconds: env.bounded("FUNCTION_TIMEOUT_SECONDS", 30, 1, 900)?,
        visibility_timeout_seconds: limits.visibility_timeout_seconds,
        max_receive_count: limits.max_receive_count,
    };
    let problems = budget.problems();
    if problems.is_empty() {
        return Ok(());
    }
    Err(ConfigError::Invalid { name: "CLAIM_TIMEOUT_SECONDS".into(), reason: problems.join("; ") }.into())
}

/// The dispatcher of the dispatch function: providers in failover order
/// (`SMS_PROVIDERS`, `EMAIL_PROVIDERS`, `PUSH_PROVIDERS`), the claim
/// timeout checked against the queue, tries, backoff and quiet hours.
pub async fn dispatcher(env: &Env, sdk: &SdkConfig, clock: Clock) -> Result<Dispatcher, Error> {
    let comms = Notifications::from_env(env, sdk)?;
    let claim_timeout = env.bounded("CLAIM_TIMEOUT_SECONDS", 120, 1, 3600)?;
    check_time_budget(env, &comms, claim_timeout).await?;
    let wiring = Wiring {
        env,
        sdk,
        timeout: Duration::from_millis(env.bounded("PROVIDER_TIMEOUT_MS", 5000, 100, 30_000)?),
        push_endpoints: comms.config.push_endpoints.clone(),
    };
    Ok(Dispatcher {
        providers: vcare_providers::build(&wiring).await?,
        limits: vcare_providers::rate_limits(env)?,
        settings: DispatchSettings {
            claim_timeout: chrono::Duration::seconds(claim_timeout),
            max_tries: env.bounded("MAX_TRIES_PER_PROVIDER", 3, 1, 10)?,
            quiet_hours: QuietHours::NONE,
            retry_base: Duration::from_secs(env.bounded("RETRY_BASE_SECONDS", 2, 0, 300)?),
        },
        quiet_hours: quiet_hours(env)?,
        receipt_mac: crate::receipt_mac(env, sdk),
        comms: Notifications { clock, ..comms },
    })
}
