//! Stand-ins for third parties (SMS gateway, Twilio, SendGrid, Jitsi...):
//! an HTTP server on loopback that answers from a script (then a default),
//! optionally after a latency, and records every request it got.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self { status, body, headers: Vec::new(), delay: Duration::ZERO }
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub bytes: Vec<u8>,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub version: String,
    /// When it arrived (end-to-end timings).
    pub at: std::time::Instant,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub fn form(&self) -> HashMap<String, String> {
        form_urlencoded::parse(self.body.as_bytes()).into_owned().collect()
    }
}

#[derive(Clone)]
struct Inner {
    script: Arc<Mutex<VecDeque<Reply>>>,
    default: Arc<Mutex<Reply>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    max_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

pub struct StandIn {
    pub url: String,
    inner: Inner,
    task: tokio::task::JoinHandle<()>,
}

async fn answer(State(inner): State<Inner>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let at = std::time::Instant::now();
    let body = axum::body::to_bytes(body, 16 << 20).await.unwrap_or_default();
    inner.requests.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body.to_vec(),
        version: format!("{:?}", parts.version),
        at,
    });
    let reply = inner.script.lock().unwrap().pop_front().unwrap_or_else(|| inner.default.lock().unwrap().clone());
    use std::sync::atomic::Ordering::SeqCst;
    let now = inner.in_flight.fetch_add(1, SeqCst) + 1;
    inner.max_in_flight.fetch_max(now, SeqCst);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    inner.in_flight.fetch_sub(1, SeqCst);
    let mut response =
        (axum::http::StatusCode::from_u16(reply.status).unwrap(), reply.body.to_string()).into_response();
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    for (k, v) in &reply.headers {
        response.headers_mut().insert(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    response
}

impl StandIn {
    pub async fn start(default: Reply) -> Self {
        let inner = Inner {
            script: Arc::default(),
            default: Arc::new(Mutex::new(default)),
            requests: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
        };
        let app = axum::Router::new().fallback(answer).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, inner, task }
    }

    /// The next replies, in order, before the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        *self.inner.default.lock().unwrap() = reply;
    }

    /// Requests it is answering now (received, not yet answered).
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The most requests it was answering at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}
