//! A counting proxy in front of the AWS endpoint: tells how many calls of
//! each operation a piece of code makes (DynamoDB `GetItem`, KMS `Decrypt`,
//! ...), so a test can hold a hot path to its budget — and, told to, makes
//! an operation fail (fault injection): the service's 500 before the
//! request reaches it, DynamoDB's throttling answer, or a 500 *after* the
//! request was carried out (the ambiguous failure: the write happened, the
//! caller is told it did not). Faults hit every call or a share of them,
//! chosen by a fixed sequence so that runs repeat.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

type Counts = Arc<Mutex<HashMap<String, usize>>>;
type Failing = Arc<Mutex<HashMap<String, Rule>>>;

/// How an injected fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `InternalServerError` (500); the request never reaches the service.
    Error,
    /// DynamoDB's `ProvisionedThroughputExceededException` (400), which the
    /// SDK retries with backoff.
    Throttle,
    /// The request is carried out, and then the caller gets a 500.
    ErrorAfterWrite,
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    fault: Fault,
    percent: u64,
    injected: usize,
}

/// Whether the `n`th call of an operation is hit, for `percent` of calls
/// spread by a fixed multiplicative hash (repeatable, no RNG needed).
fn hit(n: usize, percent: u64) -> bool {
    ((n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 100 < percent
}

fn fault_response(fault: Fault) -> Response {
    let (status, kind) = match fault {
        Fault::Throttle => (
            axum::http::StatusCode::BAD_REQUEST,
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        ),
        Fault::Error | Fault::ErrorAfterWrite => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
    };
    let body = serde_json::json!({"__type": kind, "message": "injected by the test proxy"});
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert("content-type", "application/x-amz-json-1.0".parse().expect("header"));
    response
}

pub struct CountingProxy {
    pub url: String,
    counts: Counts,
    failing: Failing,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Upstream {
    url: String,
    http: reqwest::Client,
    counts: Counts,
    failing: Failing,
}

/// The operation a request calls: `X-Amz-Target`'s action for JSON
/// protocols (DynamoDB, KMS, SQS), the form's `Action` for the query
/// protocol (SNS, STS), else `s3:<METHOD>`.
fn operation(parts: &axum::http::request::Parts, body: &[u8]) -> String {
    if let Some(target) = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    let form = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    match form_urlencoded::parse(body).find(|(k, _)| k == "Action") {
        Some((_, action)) if form => action.into_owned(),
        _ => format!("s3:{}", parts.method),
    }
}

async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let op = operation(&parts, &body);
    let n = {
        let mut counts = up.counts.lock().expect("lock");
        let n = counts.entry(op.clone()).or_default();
        *n += 1;
        *n
    };
    let fault = {
        let mut failing = up.failing.lock().expect("lock");
        match failing.get_mut(&op) {
            Some(rule) if hit(n, rule.percent) => {
                rule.injected += 1;
                Some(rule.fault)
            }
            _ => None,
        }
    };
    if let Some(fault @ (Fault::Error | Fault::Throttle)) = fault {
        return fault_response(fault);
    }
    let url = format!("{}{}", up.url, parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut request = up.http.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(_) if fault == Some(Fault::ErrorAfterWrite) => fault_response(Fault::ErrorAfterWrite),
        Ok(r) => {
            let status = r.status();
            let headers = r.headers().clone();
            let bytes = r.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            for (name, value) in &headers {
                if name != "content-length" && name != "transfer-encoding" {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
    }
}

impl CountingProxy {
    pub async fn start(upstream: &str) -> Self {
        let counts: Counts = Arc::default();
        let failing: Failing = Arc::default();
        let up = Upstream {
            url: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            counts: counts.clone(),
            failing: failing.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(up);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, counts, failing, task }
    }

    /// From now on, every call of `operation` fails with a 500 (the SDK's
    /// retries included), until [`CountingProxy::heal`].
    pub fn fail(&self, operation: &str) {
        self.inject(operation, Fault::Error, 100);
    }

    /// From now on, `percent` of the calls of `operation` meet `fault`.
    pub fn inject(&self, operation: &str, fault: Fault, percent: u64) {
        self.failing.lock().expect("lock").insert(operation.to_owned(), Rule { fault, percent, injected: 0 });
    }

    /// How many faults were injected into `operation` since it was told to fail.
    pub fn injected(&self, operation: &str) -> usize {
        self.failing.lock().expect("lock").get(operation).map_or(0, |r| r.injected)
    }

    pub fn heal(&self, operation: &str) {
        self.failing.lock().expect("lock").remove(operation);
    }

    pub fn count(&self, operation: &str) -> usize {
        self.counts.lock().expect("lock").get(operation).copied().unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.counts.lock().expect("lock").values().sum()
    }

    pub fn snapshot(&self) -> HashMap<String, usize> {
        self.counts.lock().expect("lock").clone()
    }

    pub fn reset(&self) {
        self.counts.lock().expect("lock").clear();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
