//! The seam between vcare's function code and whatever invokes it.
//!
//! In Lambda the runtime API hands a function a JSON event; in the local
//! gateway and in tests the same JSON event is handed over in-process. Both go
//! through [`Function::invoke`], so the code that runs locally is the code that
//! runs in Lambda.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use clock::Clock;
pub use lambda_runtime::{Context, Diagnostic, Error, LambdaEvent};

mod clock;
pub mod http;
pub mod metrics;
pub mod sqs;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A boxed future, as returned by [`Function::invoke`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One Lambda function: a JSON event in, a JSON response (or an error, which
/// Lambda reports as a failed invocation) out.
pub trait Function: Send + Sync + 'static {
    fn invoke(&self, event: serde_json::Value, context: Context) -> BoxFuture<'_, Result<serde_json::Value, Error>>;
}

/// A function over typed events, e.g. `SqsEvent` → `SqsBatchResponse`. An
/// event that does not have the expected shape fails the invocation.
pub struct EventFunction<F, E> {
    handler: F,
    _event: std::marker::PhantomData<fn(E)>,
}

impl<F, E> EventFunction<F, E> {
    pub fn new(handler: F) -> Self {
        Self { handler, _event: std::marker::PhantomData }
    }
}

impl<F, Fut, E, R> Function for EventFunction<F, E>
where
    F: Fn(LambdaEvent<E>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Error>> + Send + 'static,
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    fn invoke(&self, event: serde_json::Value, context: Context) -> BoxFuture<'_, Result<serde_json::Value, Error>> {
        let payload = match serde_json::from_value::<E>(event) {
            Ok(payload) => payload,
            Err(e) => {
                return Box::pin(
                    async move { Err(Error::from(format!("event does not match the expected shape: {e}"))) },
                );
            }
        };
        let fut = (self.handler)(LambdaEvent::new(payload, context));
        Box::pin(async move { Ok(serde_json::to_value(fut.await?)?) })
    }
}

/// Runs a [`Function`] under the Lambda runtime API. This is what every
/// function's `main.rs` ends with.
pub async fn serve(function: Arc<dyn Function>) -> Result<(), Error> {
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let function = function.clone();
        async move { function.invoke(event.payload, event.context).await }
    }))
    .await
}

/// The whole of a function's `main`: tracing, then `build` (typed config
/// parsed once, clients built once), then the runtime loop. A config error
/// fails the cold start loudly instead of every invocation later.
pub async fn run<B, Fut, F>(build: B) -> Result<(), Error>
where
    B: FnOnce(Env) -> Fut,
    Fut: Future<Output = Result<F, Error>>,
    F: Function,
{
    init_tracing();
    let function = build(Env::process()).await.inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    serve(Arc::new(function)).await
}

/// Where typed config reads its settings from: the process environment in
/// Lambda, the template's resolved `Environment.Variables` in the gateway.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("setting {0} is missing")]
    Missing(String),
    #[error("setting {name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
}

impl Env {
    pub fn process() -> Self {
        Self { vars: std::env::vars().collect() }
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self { vars }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name).map(str::to_owned).ok_or_else(|| ConfigError::Missing(name.to_owned()))
    }

    /// A setting parsed with `FromStr`, or `default` when absent.
    pub fn parsed_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => {
                raw.parse().map_err(|e: T::Err| ConfigError::Invalid { name: name.to_owned(), reason: e.to_string() })
            }
        }
    }
}

impl Env {
    /// A number setting within `min..=max`, or `default` when absent.
    pub fn bounded<T>(&self, name: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
        T::Err: std::fmt::Display,
    {
        let v = self.parsed_or(name, default)?;
        if v < min || v > max {
            return Err(ConfigError::Invalid { name: name.to_owned(), reason: format!("{min} to {max}") });
        }
        Ok(v)
    }
}

/// JSON logs in the shape Lambda's advanced logging expects; `RUST_LOG`
/// filters (default `info`). Each line of an invocation carries the
/// runtime's span (`spans[0]`: `requestId`, `xrayTraceId`); the current span
/// is not repeated on its own. Call once, first thing in `main`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_reads_required_and_parsed_settings() {
        let env = Env::from_map(HashMap::from([("A".into(), "7".into()), ("EMPTY".into(), String::new())]));
        assert_eq!(env.required("A").unwrap(), "7");
        assert_eq!(env.required("EMPTY"), Err(ConfigError::Missing("EMPTY".into())));
        assert_eq!(env.parsed_or::<u32>("A", 1).unwrap(), 7);
        assert_eq!(env.parsed_or::<u32>("B", 1).unwrap(), 1);
        assert_eq!(env.bounded::<u32>("A", 1, 0, 10).unwrap(), 7);
        assert!(matches!(env.bounded::<u32>("A", 1, 0, 5), Err(ConfigError::Invalid { .. })));
        assert!(matches!(
            env.parsed_or::<u32>("A", 1).and_then(|_| env.parsed_or::<bool>("A", false)),
            Err(ConfigError::Invalid { .. })
        ));
    }
}
