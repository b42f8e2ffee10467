//! One `SdkConfig` per container.
//!
//! The SDK reads region, credentials and `AWS_ENDPOINT_URL` from the
//! environment, which is how the embedded default points every client at the
//! loopback endpoint without a line of code differing from Lambda.

use std::time::Duration;

pub use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;

/// A function's timeout when its environment does not say
/// (`FUNCTION_TIMEOUT_SECONDS`; the template's `Globals.Function.Timeout`).
pub const DEFAULT_FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The SDK's time budget inside a function that must answer within
/// `function_timeout`: a tenth of it (at least a second) is kept to answer;
/// the rest fits two operations one after another (a write, and the read
/// that settles a write whose answer was lost). An attempt may take two
/// thirds of its operation: cutting slow attempts short only adds load to
/// a service that is slow already (a retry storm), so retries are for
/// quick failures. So an AWS call that hangs is an error the handler
/// answers (a 503, or the result it reads back), never a Lambda timeout
/// that answers a generic 500 for a write that may have happened.
pub fn budget(function_timeout: Duration) -> TimeoutConfig {
    let reserve = (function_timeout / 10).max(Duration::from_secs(1));
    let usable = function_timeout.saturating_sub(reserve).max(Duration::from_millis(600));
    let operation = (usable / 2).min(Duration::from_secs(12));
    let attempt = (operation * 2 / 3).min(Duration::from_secs(5));
    TimeoutConfig::builder()
        .connect_timeout(attempt.min(Duration::from_secs(2)))
        .operation_attempt_timeout(attempt)
        .operation_timeout(operation)
        .build()
}

/// Loads the shared SDK configuration (call once, in `main` or at gateway
/// start), its time budget from `FUNCTION_TIMEOUT_SECONDS`.
pub async fn load() -> SdkConfig {
    let timeout = std::env::var("FUNCTION_TIMEOUT_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(DEFAULT_FUNCTION_TIMEOUT, Duration::from_secs);
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(budget(timeout)).load().await
}

/// `sdk` with the time budget of a function whose timeout is `function_timeout`.
pub fn within(sdk: &SdkConfig, function_timeout: Duration) -> SdkConfig {
    sdk.to_builder().timeout_config(budget(function_timeout)).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_operations_and_the_answer_fit_in_the_function_timeout() {
        for seconds in [3, 5, 10, 30, 60, 900] {
            let t = Duration::from_secs(seconds);
            let b = budget(t);
            let (op, attempt) = (b.operation_timeout().unwrap(), b.operation_attempt_timeout().unwrap());
            assert!(op * 2 + Duration::from_secs(1) <= t.max(Duration::from_secs(3)), "{seconds}: {op:?}");
            assert!(attempt < op, "{seconds}: a quick failure leaves time for a retry");
            assert!(attempt >= Duration::from_millis(100), "{seconds}");
        }
        assert_eq!(budget(Duration::from_secs(10)).operation_timeout(), Some(Duration::from_millis(4500)));
    }
}
