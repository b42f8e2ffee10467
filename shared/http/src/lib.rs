//! The HTTP edge every vcare HTTP function shares.
//!
//! - [`Problem`]: the one error type, rendered as RFC 9457 `problem+json`,
//!   never carrying internals (those go to the log, without PII).
//! - [`Caller`]: who is calling, read exactly from the bearer token API
//!   Gateway's JWT authorizer verified.
//! - [`HttpFunction`]: runs an axum `Router` as a Lambda function through
//!   `lambda_http`'s own event conversion, so Lambda and the local gateway
//!   execute identical code.

pub mod audit;
mod caller;
mod edge;
mod jitsi;
mod problem;
mod strict_json;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, LambdaEvent};
use tower::Service;
use vcare_runtime::{BoxFuture, Context, Error, Function};

pub use caller::{Authenticated, caller_from_token};
pub use edge::{idempotency_key, require_role};
pub use jitsi::{JitsiProblem, jitsi_problem, jitsi_shared_secret};
pub use problem::{ApiJson, Problem, json_body, json_or_default};
pub use vcare_domain::caller::{Caller, Role, is_clinic_id};

/// A raw query string's pairs, percent- and plus-decoded, in order, with
/// repeats kept (so a rule against repeats can see them).
pub fn query_pairs(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes()).into_owned().collect()
}

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

    /// `routes` over `state`, built once per container.
    pub fn serving<S: Send + Sync + 'static>(routes: Router<std::sync::Arc<S>>, state: S) -> Self {
        Self::new(routes.with_state(std::sync::Arc::new(state)))
    }

    /// `routes` over `state`, each request to one of `audited` leaving its
    /// record in `trail` before it is answered ([`audit`]).
    pub fn audited<S: Send + Sync + 'static>(
        routes: Router<std::sync::Arc<S>>,
        state: S,
        trail: vcare_care::audit::Audit,
        audited: Vec<audit::Audited>,
    ) -> Self {
        let trail = std::sync::Arc::new(audit::Trail { audit: trail, routes: audited });
        let routes = routes
            .with_state(std::sync::Arc::new(state))
            .route_layer(axum::middleware::from_fn_with_state(trail, audit::record));
        Self::new(routes)
    }
}

/// Whether lambda_http can turn this event into a request without
/// panicking. It builds the URI with `unwrap`/`expect` (`request.rs`:
/// scheme from `x-forwarded-proto`, the host header or domain name, the
/// stage prefix, the raw query) and decodes a base64 body with `expect`;
/// this does the same steps, the same way, but asks. Found by fuzzing
/// (`fuzz/fuzz_targets/http_edge.rs`).
fn convertible(ag: &ApiGatewayV2httpRequest) -> bool {
    use base64::Engine;
    let header = |name| ag.headers.get(name).and_then(|v: &http::HeaderValue| v.to_str().ok());
    let host = header(http::header::HOST.as_str()).or(ag.request_context.domain_name.as_deref());
    let raw_path = ag.raw_path.as_deref().unwrap_or_default();
    let path = match ag.request_context.stage.as_deref() {
        _ if std::env::var_os("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH").is_some() => raw_path.to_owned(),
        Some(stage) if stage != "$default" && !raw_path.starts_with(&format!("/{stage}/")) => {
            format!("/{stage}{raw_path}")
        }
        _ => raw_path.to_owned(),
    };
    let built = match host {
        None => url::Url::parse(&format!("http://localhost{path}")).map(|u| u.path().to_owned()),
        Some(host) => url::Url::parse(&format!("{}://{host}{path}", header("x-forwarded-proto").unwrap_or("https")))
            .map(|u| u.to_string()),
    };
    let Ok(mut uri) = built else { return false };
    if let Some(query) = ag.raw_query_string.as_deref().filter(|q| !q.is_empty()) {
        uri.push('?');
        uri.push_str(query);
    }
    let body_ok = match (&ag.body, ag.is_base64_encoded) {
        (Some(body), true) => base64::engine::general_purpose::STANDARD.decode(body).is_ok(),
        _ => true,
    };
    http::Uri::try_from(uri).is_ok() && body_ok
}

impl Function for HttpFunction {
    fn invoke(&self, event: serde_json::Value, context: Context) -> BoxFuture<'_, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            // API Gateway HTTP APIs send payload 2.0 only; other shapes
            // (REST v1, ALB) are a wiring mistake, and an invocation error.
            if event.get("version").and_then(|v| v.as_str()) != Some("2.0") {
                return Err("not an API Gateway HTTP API event (payload format 2.0)".into());
            }
            let request: LambdaRequest = serde_json::from_value(event)?;
            let LambdaRequest::ApiGatewayV2(ag) = &request else {
                return Err("not an API Gateway HTTP API event (payload format 2.0)".into());
            };
            if !convertible(ag) {
                tracing::warn!("a request lambda_http cannot convert was refused");
                let problem = Problem::bad_request("the request's host, path, query or body encoding is not valid");
                return Ok(serde_json::json!({
                    "statusCode": problem.status.as_u16(),
                    "headers": {"content-type": "application/problem+json"},
                    "body": serde_json::to_string(&problem)?,
                    "isBase64Encoded": false,
                    "cookies": [],
                }));
            }
            // The adapter itself is not `Send` (it is built for lambda_http's
            // single-threaded loop); only its future crosses the await.
            // Router is always ready, so no `poll_ready` is needed.
            let future = Adapter::from(self.router.clone()).call(LambdaEvent::new(request, context));
            let response = future.await.map_err(|never| match never {})?;
            Ok(serde_json::to_value(response)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(host: &str, path: &str, query: &str) -> serde_json::Value {
        json!({
            "version": "2.0", "routeKey": "GET /x", "rawPath": path, "rawQueryString": query,
            "headers": {"host": host}, "isBase64Encoded": false,
            "requestContext": {
                "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "t"},
                "stage": "$default", "requestId": "r", "accountId": "123456789012", "apiId": "a",
                "domainName": "api.example.org", "domainPrefix": "api", "time": "t", "timeEpoch": 0,
            },
        })
    }

    #[tokio::test]
    async fn a_request_lambda_http_cannot_build_is_a_400_problem_not_a_panic() {
        let f = HttpFunction::new(Router::new().route("/x", axum::routing::get(|| async { "ok" })));
        let ok = f.invoke(event("api.example.org", "/x", "a=1"), Context::default()).await.unwrap();
        assert_eq!(ok["statusCode"], 200, "{ok}");
        // The first: the fuzzer's (a backtick in the host header).
        let mut cases: Vec<_> =
            [("api.vcare.exampl`", "/x", ""), ("a b", "/x", ""), ("h:99999999", "/x", ""), ("h", "/x", "a=b c")]
                .into_iter()
                .map(|(host, path, query)| event(host, path, query))
                .collect();
        // The header name in another case (found by the fuzzer too), and a
        // body that claims base64 and is not.
        let mut upper = event("ok", "/x", "");
        upper["headers"] = json!({"Host": "api:99999999999.example"});
        let mut body = event("api.example.org", "/x", "");
        (body["body"], body["isBase64Encoded"]) = (json!("not base64!"), json!(true));
        cases.extend([upper, body]);
        for case in cases {
            let out = f.invoke(case.clone(), Context::default()).await.unwrap();
            let (host, path, query) = (&case["headers"], &case["rawPath"], &case["rawQueryString"]);
            assert_eq!(out["statusCode"], 400, "{host} {path} {query}: {out}");
            assert_eq!(out["headers"]["content-type"], "application/problem+json");
            let body: serde_json::Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
            assert_eq!(
                body["detail"], "the request's host, path, query or body encoding is not valid",
                "names no value"
            );
        }
        let v1 = json!({"version": "1.0", "path": "/x", "httpMethod": "GET", "headers": {}});
        assert!(f.invoke(v1, Context::default()).await.is_err(), "only payload 2.0");
    }
}
