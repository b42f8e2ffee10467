//! The HTTP edge every vcare HTTP function shares.
//!
//! - [`Problem`]: the one error type, rendered as RFC 9457 `problem+json`,
//!   never carrying internals (those go to the log, without PII).
//! - [`Caller`]: who is calling, read from the claims API Gateway's JWT
//!   authorizer passed on.
//! - [`HttpFunction`]: runs an axum `Router` as a Lambda function through
//!   `lambda_http`'s own event conversion, so Lambda and the local gateway
//!   execute identical code.

mod caller;
mod edge;
mod problem;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, LambdaEvent};
use tower::Service;
use vcare_runtime::{BoxFuture, Context, Error, Function};

pub use caller::{Caller, Role, roles_from_claim};
pub use edge::{rejected, require_role, store_problem};
pub use problem::{ApiJson, Problem, json_or_default};

/// Largest request body any route accepts (API.md: 413 above it).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// An axum `Router` run as a Lambda function behind API Gateway (HTTP API,
/// payload format 2.0).
#[derive(Clone)]
pub struct HttpFunction {
    router: Router,
}

impl HttpFunction {
    /// Wraps `router` with what every route shares: the body limit and
    /// problem+json answers for unknown routes and methods.
    pub fn new(router: Router) -> Self {
        let router = router
            .fallback(|| async { Problem::not_found("no such resource") })
            .method_not_allowed_fallback(|| async {
                Problem::new(http::StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            })
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
        Self { router }
    }
}

impl Function for HttpFunction {
    fn invoke(&self, event: serde_json::Value, context: Context) -> BoxFuture<'_, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let request: LambdaRequest = serde_json::from_value(event)?;
            // The adapter itself is not `Send` (it is built for lambda_http's
            // single-threaded loop); only its future crosses the await.
            // Router is always ready, so no `poll_ready` is needed.
            let future = Adapter::from(self.router.clone()).call(LambdaEvent::new(request, context));
            let response = future.await.map_err(|never| match never {})?;
            Ok(serde_json::to_value(response)?)
        })
    }
}
