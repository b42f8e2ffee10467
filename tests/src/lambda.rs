//! A function's real binary under a Lambda Runtime API of our own: the
//! `/2018-06-01/runtime/...` endpoints Lambda serves to a custom runtime
//! (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), enough
//! to start a `bootstrap`, hand it invocations one at a time, and time what
//! it does. Used by tests (what a deployed function prints) and by the
//! benchmarks (cold start, warm invocations, peak memory).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// What the function answered to one invocation.
#[derive(Debug)]
pub struct Invoked {
    /// `/response` (Ok) or `/error` (Err) body.
    pub result: Result<Value, Value>,
    /// From handing the event over (`/next` answered) to the answer.
    pub handler: Duration,
}

struct Pending {
    request_id: String,
    trace_id: String,
    event: Value,
    answered: oneshot::Sender<Invoked>,
}

#[derive(Default)]
struct Shared {
    first_next: Mutex<Option<Instant>>,
    waiting: Mutex<HashMap<String, (Instant, oneshot::Sender<Invoked>)>>,
    init_error: Mutex<Option<Value>>,
}

type Queue = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>;

/// The emulated Runtime API, on a free loopback port.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    queue: mpsc::UnboundedSender<Pending>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let state = (shared.clone(), Arc::new(tokio::sync::Mutex::new(rx)) as Queue);
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, shared, queue, server }
    }

    /// When the runtime first asked for work (its init is over).
    pub fn first_next(&self) -> Option<Instant> {
        *self.shared.first_next.lock().unwrap()
    }

    pub fn init_error(&self) -> Option<Value> {
        self.shared.init_error.lock().unwrap().clone()
    }

    /// Hands `event` to the function (with the X-Ray trace header Lambda
    /// would give) and waits for its answer.
    pub async fn invoke(&self, event: Value, request_id: &str, trace_id: &str, within: Duration) -> Invoked {
        let (answered, rx) = oneshot::channel();
        let pending = Pending { request_id: request_id.to_owned(), trace_id: trace_id.to_owned(), event, answered };
        self.queue.send(pending).map_err(|_| ()).expect("the runtime API is up");
        tokio::time::timeout(within, rx)
            .await
            .unwrap_or_else(|_| panic!("no answer to {request_id} within {within:?}"))
            .expect("the runtime API answers")
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type AppState = (Arc<Shared>, Queue);

async fn next(State((shared, queue)): State<AppState>) -> Response {
    shared.first_next.lock().unwrap().get_or_insert_with(Instant::now);
    let Some(p) = queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    shared.waiting.lock().unwrap().insert(p.request_id.clone(), (Instant::now(), p.answered));
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("lambda-runtime-aws-request-id", p.request_id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:eu-central-1:000000000000:function:vcare".to_owned()),
        ("lambda-runtime-trace-id", p.trace_id),
    ];
    let mut response = (StatusCode::OK, p.event.to_string()).into_response();
    for (name, value) in headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

fn answer(shared: &Shared, id: &str, result: Result<Value, Value>) -> StatusCode {
    let Some((handed, tx)) = shared.waiting.lock().unwrap().remove(id) else {
        return StatusCode::BAD_REQUEST;
    };
    let _ = tx.send(Invoked { result, handler: handed.elapsed() });
    StatusCode::ACCEPTED
}

fn json(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State((shared, _)): State<AppState>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    answer(&shared, &id, Ok(json(&body)))
}

async fn error(
    State((shared, _)): State<AppState>,
    UrlPath(id): UrlPath<String>,
    _headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    answer(&shared, &id, Err(json(&body)))
}

async fn init_error(State((shared, _)): State<AppState>, body: Bytes) -> StatusCode {
    *shared.init_error.lock().unwrap() = Some(json(&body));
    StatusCode::ACCEPTED
}

/// A workspace binary built next to the running test (`target/<profile>/`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let path = dir.join(name);
    assert!(path.exists(), "{} is not built (infra/scripts/test.sh builds every binary first)", path.display());
    path
}

fn collect(out: impl std::io::Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(out)) {
            let Ok(line) = line else { break };
            lines.lock().unwrap().push(line);
        }
    })
}

/// A function's binary running as Lambda runs a `bootstrap`.
pub struct Process {
    pub child: std::process::Child,
    pub started: Instant,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Starts `binary` against `api` with the function's `environment`
    /// (from the template, as the gateway resolves it) and Lambda's own
    /// variables; stdout and stderr are collected line by line.
    pub fn spawn(binary: &Path, api: &RuntimeApi, environment: &HashMap<String, String>) -> Self {
        let name = binary.file_name().unwrap().to_string_lossy().into_owned();
        let mut command = std::process::Command::new(binary);
        command
            .env_clear()
            .envs(environment)
            .envs(std::env::vars().filter(|(k, _)| k.starts_with("AWS_") || k == "PATH"))
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("RUST_LOG", environment.get("RUST_LOG").map_or("info", String::as_str))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command.spawn().unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), lines.clone()),
            collect(child.stderr.take().unwrap(), lines.clone()),
        ];
        Self { child, started, lines, readers }
    }

    /// Ends the process (Lambda's shutdown) and returns every line it printed.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.lines.lock().unwrap().clone()
    }

    /// Peak resident memory so far (Linux `VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Waits until the runtime asks for its first invocation (init done),
    /// or the process ends (a failed cold start).
    pub async fn ready(&mut self, api: &RuntimeApi, within: Duration) -> Result<Duration, String> {
        let give_up = Instant::now() + within;
        loop {
            if let Some(at) = api.first_next() {
                return Ok(at - self.started);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited ({status}) before asking for work"));
            }
            if Instant::now() > give_up {
                return Err(format!("no /next within {within:?}"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
