//! Harness for vcare's end-to-end tests.
//!
//! Every test gets its own stack — resources named `<random>-<LogicalId>` on
//! the loopback AWS endpoint that `make test` started — and its own gateway
//! on a free port, so tests run in parallel and never touch a dev stack.

pub mod audit;
pub mod catalogue;
pub mod comms;
pub mod fhir;
pub mod fixtures;
pub mod lambda;
pub mod livekit;
pub mod measure;
pub mod proxy;
pub mod rooms;
pub mod standins;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
pub use vcare_aws::SdkConfig;
use vcare_local::{DEV_AUDIENCE, DEV_ISSUER, DevIssuer, Gateway, GatewayConfig, Jwks, MintClaims, Registry};

/// The Jitsi app secret and webhook secret the test stacks are given.
/// (The development defaults, so that the samples in events/ work on both.)
pub const JITSI_APP_SECRET: &str = "vcare-local-jitsi-app-secret";
pub const JITSI_WEBHOOK_SECRET: &str = "vcare-local-jitsi-webhook-secret";

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The SDK config for the test endpoint. Panics with directions when the
/// suite is run without one.
pub async fn sdk() -> SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| v.starts_with("http://127.")),
        "these tests need the loopback AWS endpoint: run them with `make test`"
    );
    vcare_aws::load().await
}

/// An SDK config whose clients go to `endpoint` (a proxy in front of the
/// test endpoint) instead of `AWS_ENDPOINT_URL`.
pub async fn sdk_via(endpoint: &str) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(endpoint).load().await
}

pub struct TestStack {
    pub gateway: Gateway,
    pub sdk: SdkConfig,
    pub base: String,
    pub http: reqwest::Client,
    issuer: DevIssuer,
    _keys: TempDir,
    /// The stack's OpenVidu (a LiveKit stand-in).
    pub livekit: livekit::LiveKit,
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("vcare-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh stack name: short, lowercase, unique.
/// The public base of the test stacks' join links: 30 characters, the
/// length the SMS segment targets assume (API.md "Join links").
pub const JOIN_LINK_BASE: &str = "https://vc.kabul-family.clinic";

/// The test stacks' clinic whose rooms are on OpenVidu (every stack has a
/// LiveKit stand-in, [`TestStack::livekit`]).
pub const OPENVIDU_CLINIC: &str = "c-ov";

pub fn stack_name() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

pub fn config(template: PathBuf, stack: &str, keys: &Path) -> GatewayConfig {
    GatewayConfig {
        template,
        stack: stack.to_owned(),
        region: std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-central-1".into()),
        addr: "127.0.0.1:0".parse().expect("addr"),
        parameters: BTreeMap::from([
            ("AuthIssuer".to_owned(), DEV_ISSUER.to_owned()),
            ("AuthAudience".to_owned(), DEV_AUDIENCE.to_owned()),
            ("JoinLinkBaseUrl".to_owned(), JOIN_LINK_BASE.to_owned()),
            // LiveKit egress (the stand-in) writes to the loopback S3.
            ("EgressS3Endpoint".to_owned(), std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()),
        ]),
        jwks: Jwks::Dev(keys.to_path_buf()),
        retry_delay: Duration::from_secs(1),
        poll_wait: Duration::from_secs(1),
        schedules: false,
        event_sources: true,
        only_sources: None,
        concurrency: 32,
        checkpoints: None,
        secrets: BTreeMap::from([
            ("JitsiAppSecretCiphertext".to_owned(), JITSI_APP_SECRET.to_owned()),
            ("JitsiWebhookSecretCiphertext".to_owned(), JITSI_WEBHOOK_SECRET.to_owned()),
        ]),
    }
}

impl TestStack {
    /// vcare's own template and functions.
    pub async fn start() -> Self {
        Self::start_with(root().join("infra/template.yaml"), &Registry::vcare(), |_| {}).await
    }

    /// Any template and registry; `tune` adjusts the config before start.
    pub async fn start_with(template: PathBuf, registry: &Registry, tune: impl FnOnce(&mut GatewayConfig)) -> Self {
        Self::start_through(template, registry, None, tune).await
    }

    /// [`Self::start_with`], the functions' AWS calls going to `endpoint`
    /// (a fault-injecting proxy) when given; the test's own `sdk` still
    /// goes straight to the local endpoint.
    pub async fn start_through(
        template: PathBuf,
        registry: &Registry,
        endpoint: Option<&str>,
        tune: impl FnOnce(&mut GatewayConfig),
    ) -> Self {
        capture_logs();
        let sdk = sdk().await;
        let functions_sdk = match endpoint {
            Some(url) => sdk_via(url).await,
            None => sdk.clone(),
        };
        let keys = TempDir::new();
        let livekit = livekit::LiveKit::start().await;
        let mut config = config(template, &stack_name(), &keys.0);
        config.parameters.insert("OpenViduUrl".into(), livekit.url.clone());
        config.parameters.insert("OpenViduApiKey".into(), livekit::API_KEY.into());
        config.parameters.insert("ClinicVideoProviders".into(), format!("{OPENVIDU_CLINIC}=openvidu"));
        config.secrets.insert("OpenViduApiSecretCiphertext".into(), livekit::API_SECRET.into());
        tune(&mut config);
        let gateway = Gateway::start(config, registry, &functions_sdk).await.expect("gateway starts");
        let base = format!("http://{}", gateway.addr);
        Self { gateway, sdk, base, http: reqwest::Client::new(), issuer: DevIssuer::new(&keys.0), _keys: keys, livekit }
    }

    /// A caller token from the development issuer.
    pub fn token(&self, sub: &str, clinic: Option<&str>, roles: &[&str]) -> String {
        self.issuer
            .mint(
                DEV_ISSUER,
                DEV_AUDIENCE,
                &MintClaims {
                    sub: sub.into(),
                    clinic_id: clinic.map(str::to_owned),
                    roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                    ttl_seconds: 600,
                },
            )
            .expect("mint")
    }

    /// A caller token whose payload is `members` (JSON object members, as
    /// text, so that a member may repeat) after the issuer's `iss`, `aud`,
    /// `iat` and `exp`.
    pub fn token_with(&self, members: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let payload =
            format!(r#"{{"iss":"{DEV_ISSUER}","aud":"{DEV_AUDIENCE}","iat":{now},"exp":{},{members}}}"#, now + 600);
        self.issuer.mint_payload(&payload).expect("mint")
    }

    /// Sends a request; returns status, content type and the body as JSON
    /// (`Value::Null` when empty). Every 4xx/5xx body is logged for the
    /// suite's scan.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, String, Value) {
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let bytes = response.bytes().await.expect("body");
        if status >= 400 {
            // Into the suite's log capture, which `make test` scans for
            // personal data and secrets: error bodies are held to the
            // same rule as log lines.
            tracing::info!(status, body = %String::from_utf8_lossy(&bytes), "error answer");
        }
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        (status, content_type, body)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, String, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// The development issuer's key folder (what signs [`TestStack::token`]).
    pub fn keys_dir(&self) -> &Path {
        &self.issuer.dir
    }

    pub async fn stop(self) {
        self.gateway.stop().await;
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Receives from the stack's domain-events FIFO queue until `want`
/// messages came or `within` passed: the events, as published.
pub async fn domain_events(stack: &TestStack, want: usize, within: Duration) -> Vec<serde_json::Value> {
    let url = stack.gateway.resource("DomainEventsQueue").expect("the queue").reference.clone();
    receive(&stack.sdk, &url, want, within).await.into_iter().map(|(body, _)| body).collect()
}

/// Receives from a queue until `want` messages came or `within` passed,
/// deleting each (so a FIFO group's next comes): each JSON body with when
/// it was received.
pub async fn receive(
    sdk: &SdkConfig,
    url: &str,
    want: usize,
    within: Duration,
) -> Vec<(serde_json::Value, chrono::DateTime<chrono::Utc>)> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let deadline = tokio::time::Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < want && tokio::time::Instant::now() < deadline {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let at = chrono::Utc::now();
        for m in got.messages.unwrap_or_default() {
            out.push((serde_json::from_str(m.body().unwrap_or_default()).expect("JSON bodies"), at));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    out
}

/// Runs one of the project's scripts (a path under the checkout) with extra
/// environment; fails the test with everything it printed unless it
/// succeeds, and returns its standard output.
pub fn run_script(path: &str, env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(root().join(path))
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{path} failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// With `VCARE_TEST_LOG_DIR` set (`make test` sets it), every log line of
/// this test process — the functions', the gateway's, the SDK's, at
/// production's level (info; debug for vcare's crates) — goes as JSON to
/// `<dir>/<binary>-<pid>.jsonl`, which `infra/scripts/scan-test-logs.py`
/// searches, after the suite, for the personal data and secrets the tests
/// use. A test that installs its own subscriber first (logs.rs) keeps it.
pub fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(dir) = std::env::var_os("VCARE_TEST_LOG_DIR") else { return };
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("log dir");
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "tests".into());
        let file = std::fs::File::create(dir.join(format!("{binary}-{}.jsonl", std::process::id()))).expect("log file");
        let filter = "info,vcare=debug,vcare_local=debug,dispatch=debug,outbox_relay=debug,dlr_callback=debug";
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    });
}

/// Moves a sample API Gateway event (events/) to another clinic: the
/// authorizer's `clinic_id` claim and the bearer token's payload, which
/// functions read (the token's signature is the authorizer's business).
pub fn set_clinic(event: &mut Value, clinic: &str) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    event["requestContext"]["authorizer"]["jwt"]["claims"]["clinic_id"] = Value::String(clinic.to_owned());
    let header = event["headers"]["authorization"].as_str().expect("a bearer token").to_owned();
    let parts: Vec<&str> = header.trim_start_matches("Bearer ").split('.').collect();
    let mut payload: Value = serde_json::from_slice(&b64.decode(parts[1]).expect("base64url")).expect("JSON");
    payload["clinic_id"] = Value::String(clinic.to_owned());
    let token = format!("{}.{}.{}", parts[0], b64.encode(payload.to_string()), parts[2]);
    event["headers"]["authorization"] = Value::String(format!("Bearer {token}"));
}

/// Runs every future at once on this task (no spawning, so they may
/// borrow); their results in order.
pub async fn join_all<T>(calls: impl Iterator<Item = impl std::future::Future<Output = T>>) -> Vec<T> {
    let mut pinned: Vec<_> = calls.map(Box::pin).collect();
    let mut results: Vec<Option<T>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    results.into_iter().map(Option::unwrap).collect()
}
