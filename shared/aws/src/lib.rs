//! One `SdkConfig` per container.
//!
//! The SDK reads region, credentials and `AWS_ENDPOINT_URL` from the
//! environment, which is how the embedded default points every client at the
//! loopback endpoint without a line of code differing from Lambda.

use std::time::Duration;

pub use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;

/// Loads the shared SDK configuration (call once, in `main` or at gateway start).
///
/// Bounded timeouts: a handler must answer within API Gateway's 30 s, and a
/// dependency that hangs should surface as an error the caller can retry, not
/// as a Lambda timeout.
pub async fn load() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(12))
                .build(),
        )
        .load()
        .await
}
