//! `vcare-local`: the embedded default.
//!
//! Reads infra/template.yaml, makes its tables, queues, keys and buckets on a
//! loopback AWS endpoint, then runs the template's functions — the very
//! handler code Lambda runs, linked in as libraries — behind:
//! - the HTTP API's routes (payload format 2.0, JWT authorizer emulated),
//! - SQS event sources (batching, `ReportBatchItemFailures`, redrive to DLQ),
//! - DynamoDB stream event sources (batches, filters, partial failures),
//! - schedules.

pub mod auth;
pub mod bootstrap;
pub mod http;
pub mod model;
pub mod registry;
pub mod resolve;
mod sources;
pub mod template;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;
use vcare_aws::SdkConfig;
use vcare_runtime::{Context, Env, Error, Function};

pub use auth::{Authorizer, DevIssuer, MintClaims};
pub use model::{EventSource, FunctionDef};
pub use registry::Registry;
pub use resolve::{Physical, Stack};
pub use template::Template;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("template: {0}")]
    Template(String),
    #[error("AWS endpoint: {0}")]
    Aws(String),
    #[error("authorizer: {0}")]
    Auth(String),
    #[error("function {function}: {reason}")]
    Function { function: String, reason: String },
    #[error("config: {0}")]
    Config(String),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the caller-token keys come from.
#[derive(Debug, Clone)]
pub enum Jwks {
    /// `AUTH_JWKS_URL`: `http(s)://` or `file://`.
    Url(String),
    /// The development issuer's key pair in this folder (made on first run).
    Dev(PathBuf),
}

/// The issuer and audience the gateway and `vcare-local token` use when
/// `AUTH_ISSUER` / `AUTH_AUDIENCE` are not set.
pub const DEV_ISSUER: &str = "https://vcare.local/realms/dev";
pub const DEV_AUDIENCE: &str = "vcare-api";

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub template: PathBuf,
    /// Prefix of every physical resource name: separate stacks share nothing.
    pub stack: String,
    pub region: String,
    pub addr: SocketAddr,
    /// Template parameter values (e.g. `AuthIssuer`).
    pub parameters: BTreeMap<String, String>,
    pub jwks: Jwks,
    /// How long an SQS message a function failed stays invisible before it
    /// is retried. Lambda waits the queue's visibility timeout; locally this
    /// is shorter so that retries and dead-lettering take seconds.
    pub retry_delay: Duration,
    /// SQS long-poll wait and stream poll interval.
    pub poll_wait: Duration,
    /// Fire `Schedule` events on their timers (tests fire them by hand).
    pub schedules: bool,
    /// Poll SQS and stream event sources (off: tests drive workers by hand).
    pub event_sources: bool,
    /// Where given, only these functions' (logical ids) event sources are
    /// polled: a test may run one worker under load and no other.
    pub only_sources: Option<Vec<String>>,
    /// Invocations of one function running at once; more wait for a turn
    /// before their timeout starts (`VCARE_FUNCTION_CONCURRENCY`, 32).
    /// Lambda gives each invocation a container of its own and the AWS
    /// services scale with them; here every invocation shares one process
    /// and one loopback endpoint, so without a bound a burst of hundreds
    /// would spend its timeouts queued in the endpoint, not running.
    pub concurrency: usize,
    /// Where stream sources keep their checkpoints across restarts, as
    /// Lambda's event source mappings do (`None`: in memory; a restart
    /// reads the stream from its starting position again).
    pub checkpoints: Option<PathBuf>,
    /// Plaintext of each `...Ciphertext` template parameter. After bootstrap
    /// the gateway encrypts it under the template's `DataKey` with encryption
    /// context `vcare:purpose=<kebab-case name>` (as an operator does with
    /// `aws kms encrypt` before deploying) and passes the ciphertext on.
    pub secrets: BTreeMap<String, String>,
}

/// The KMS key (template logical id) secrets are encrypted under.
pub const SECRETS_KEY: &str = "DataKey";

/// Development values of the secret parameters, used when the matching
/// variable is not set (documented in the README; never for production).
pub const DEV_SECRETS: &[(&str, &str)] = &[
    ("JitsiAppSecretCiphertext", "vcare-local-jitsi-app-secret"),
    ("JitsiWebhookSecretCiphertext", "vcare-local-jitsi-webhook-secret"),
    ("OpenViduApiSecretCiphertext", "vcare-local-openvidu-api-secret"),
];

/// `JitsiAppSecretCiphertext` → `jitsi-app-secret`: the encryption-context
/// purpose of a secret parameter.
pub fn secret_purpose(parameter: &str) -> String {
    let base = parameter.strip_suffix("Ciphertext").unwrap_or(parameter);
    screaming_snake(base).to_lowercase().replace('_', "-")
}

impl GatewayConfig {
    /// The settings of README's "run it locally": `VCARE_HTTP_ADDR`,
    /// `VCARE_STACK`, `AWS_REGION`, `AUTH_JWKS_URL`, `VCARE_STATE_DIR`, and one
    /// variable per template parameter, named in SCREAMING_SNAKE_CASE
    /// (`AuthIssuer` ← `AUTH_ISSUER`, `JitsiDomain` ← `JITSI_DOMAIN`).
    pub fn from_env(env: &Env, root: &Path) -> Result<Self, GatewayError> {
        let bad = |e: vcare_runtime::ConfigError| GatewayError::Config(e.to_string());
        let template = root.join("infra/template.yaml");
        let parsed = Template::load(&template)?;
        let mut parameters = BTreeMap::new();
        for name in parsed.parameters().keys() {
            if let Some(v) = env.get(&screaming_snake(name)) {
                parameters.insert(name.clone(), v.to_owned());
            }
        }
        parameters.entry("AuthIssuer".into()).or_insert_with(|| DEV_ISSUER.into());
        parameters.entry("AuthAudience".into()).or_insert_with(|| DEV_AUDIENCE.into());
        let addr = env.parsed_or("VCARE_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 3031))).map_err(bad)?;
        // Receipts come back to this gateway unless told otherwise.
        parameters.entry("DlrCallbackBaseUrl".into()).or_insert_with(|| format!("http://{addr}"));
        // Join links open on this gateway too.
        parameters.entry("JoinLinkBaseUrl".into()).or_insert_with(|| format!("http://{addr}"));
        let mut secrets = BTreeMap::new();
        for name in parsed.parameters().keys().filter(|n| n.ends_with("Ciphertext")) {
            let var = screaming_snake(name.trim_end_matches("Ciphertext"));
            let dev = DEV_SECRETS.iter().find(|(n, _)| n == name).map(|(_, v)| (*v).to_owned());
            if let Some(value) = env.get(&var).map(str::to_owned).or(dev) {
                secrets.insert(name.clone(), value);
            }
        }
        let state = env.get("VCARE_STATE_DIR").map(PathBuf::from).unwrap_or_else(|| root.join(".vcare"));
        let jwks = match env.get("AUTH_JWKS_URL") {
            Some(url) => Jwks::Url(url.to_owned()),
            None => Jwks::Dev(state.join("dev-auth")),
        };
        Ok(Self {
            template,
            stack: env.get("VCARE_STACK").unwrap_or("vcare-local").to_owned(),
            region: env.get("AWS_REGION").unwrap_or("eu-central-1").to_owned(),
            addr,
            parameters,
            jwks,
            retry_delay: Duration::from_secs(env.parsed_or("VCARE_RETRY_DELAY_SECONDS", 2).map_err(bad)?),
            poll_wait: Duration::from_millis(env.parsed_or("VCARE_POLL_MS", 1000).map_err(bad)?),
            schedules: env.parsed_or("VCARE_SCHEDULES", true).map_err(bad)?,
            event_sources: true,
            only_sources: None,
            concurrency: env.parsed_or("VCARE_FUNCTION_CONCURRENCY", 32).map_err(bad)?,
            checkpoints: Some(state.join("checkpoints")),
            secrets,
        })
    }
}

/// `AuthIssuer` → `AUTH_ISSUER`, `SmsGatewayUrl` → `SMS_GATEWAY_URL`.
pub fn screaming_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// A template function with its code, ready to invoke.
pub struct Deployed {
    pub def: FunctionDef,
    pub arn: String,
    function: Arc<dyn Function>,
    /// Turns to run (`GatewayConfig::concurrency`).
    slots: Arc<tokio::sync::Semaphore>,
}

impl Deployed {
    /// Invokes the function as Lambda would: a fresh request id, a deadline
    /// from the template's `Timeout`, the timeout enforced, a panic reported
    /// as a failed invocation rather than taking the gateway down.
    pub async fn invoke(&self, event: Value) -> Result<Value, Error> {
        // A turn first: the timeout is the invocation's own, from its start.
        let _turn = self.slots.acquire().await.map_err(|e| e.to_string())?;
        let timeout = Duration::from_secs(self.def.timeout_seconds.max(1));
        let mut context = Context::default();
        context.request_id = uuid::Uuid::new_v4().to_string();
        context.invoked_function_arn = self.arn.clone();
        context.deadline = (chrono::Utc::now().timestamp_millis() as u64).saturating_add(timeout.as_millis() as u64);
        let function = self.function.clone();
        let call = tokio::spawn(async move { function.invoke(event, context).await });
        let abort = call.abort_handle();
        match tokio::time::timeout(timeout, call).await {
            Err(_) => {
                // Lambda freezes a timed-out invocation; nothing of it runs on.
                abort.abort();
                Err(format!("Task timed out after {} seconds", timeout.as_secs()).into())
            }
            Ok(Err(join)) if join.is_panic() => Err("Runtime.ExitError: the function panicked".into()),
            Ok(Err(join)) => Err(join.to_string().into()),
            Ok(Ok(result)) => result,
        }
    }
}

/// A running gateway. Dropping it without [`Gateway::stop`] leaves its
/// tasks running until the runtime ends.
pub struct Gateway {
    pub addr: SocketAddr,
    pub stack: Stack,
    functions: HashMap<String, Arc<Deployed>>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Gateway {
    /// Bootstraps the stack's resources, builds every template function from
    /// `registry` (a function the registry lacks is an error), and starts
    /// serving.
    pub async fn start(config: GatewayConfig, registry: &Registry, sdk: &SdkConfig) -> Result<Self, GatewayError> {
        let template = Template::load(&config.template)?;
        let mut parameters = config.parameters.clone();
        for name in config.secrets.keys() {
            parameters.entry(name.clone()).or_insert_with(|| "(encrypted after bootstrap)".into());
        }
        let mut stack = Stack::new(&template, &config.stack, &config.region, &parameters)?;
        bootstrap::bootstrap(&template, &mut stack, sdk).await?;
        let declared = template.parameters();
        for (name, plaintext) in config.secrets.iter().filter(|(n, _)| declared.contains_key(*n)) {
            let ciphertext =
                bootstrap::encrypt_secret(&stack, sdk, SECRETS_KEY, &secret_purpose(name), plaintext).await?;
            stack.set_param(name, ciphertext);
        }
        let api = model::http_api(&template, &stack)?;
        let defs = model::functions(&template, &stack, &api)?;

        let mut authorizers = HashMap::new();
        if !api.authorizers.is_empty() {
            let jwks = match &config.jwks {
                Jwks::Url(url) => Authorizer::load_jwks(url).await?,
                Jwks::Dev(dir) => {
                    let dev = DevIssuer::new(dir);
                    dev.ensure()?;
                    Authorizer::load_jwks(&format!("file://{}", dev.jwks_path().display())).await?
                }
            };
            for a in &api.authorizers {
                authorizers
                    .insert(a.name.clone(), Arc::new(Authorizer::new(a.issuer.clone(), a.audiences.clone(), &jwks)?));
            }
        }

        let mut functions = HashMap::new();
        let mut routes = Vec::new();
        for def in defs {
            let env = Env::from_map(def.environment.clone());
            let function = registry
                .build(&def.binary, env, vcare_aws::within(sdk, Duration::from_secs(def.timeout_seconds)))
                .await
                .map_err(|reason| GatewayError::Function { function: def.logical_id.clone(), reason })?;
            let arn = stack.physical.get(&def.logical_id).and_then(|p| p.attrs.get("Arn")).cloned().unwrap_or_default();
            let slots = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
            let deployed = Arc::new(Deployed { def, arn, function, slots });
            for event in &deployed.def.events {
                if let EventSource::Http(r) = event {
                    let authorizer = match &r.authorizer {
                        None => None,
                        Some(name) => Some(authorizers.get(name).cloned().ok_or_else(|| {
                            GatewayError::Template(format!("{} {}: no authorizer {name}", r.method, r.path))
                        })?),
                    };
                    routes.push(http::Route {
                        function: deployed.clone(),
                        method: r.method.clone(),
                        path: r.path.clone(),
                        authorizer,
                    });
                }
            }
            functions.insert(deployed.def.logical_id.clone(), deployed);
        }

        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let app = http::router(routes);
        let mut shutdown = stopped.clone();
        tasks.spawn(async move {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        if config.event_sources {
            sources::start(&mut tasks, &functions, &stack, &config, sdk, &stopped).await?;
        }
        tracing::info!(%addr, stack = %stack.name, functions = functions.len(), "vcare-local is serving");
        Ok(Self { addr, stack, functions, stop, tasks })
    }

    pub fn function(&self, logical_id: &str) -> Option<&Arc<Deployed>> {
        self.functions.get(logical_id)
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Physical> {
        self.stack.physical.get(logical_id)
    }

    /// Fires one of a function's `Schedule` events now, as EventBridge would.
    pub async fn fire_schedule(&self, logical_id: &str, event_name: &str) -> Result<Value, Error> {
        let function = self.functions.get(logical_id).ok_or("no such function")?;
        let schedule = function
            .def
            .events
            .iter()
            .find_map(|e| match e {
                EventSource::Schedule(s) if s.name == event_name => Some(s.clone()),
                _ => None,
            })
            .ok_or("no such schedule")?;
        function.invoke(sources::scheduled_event(&self.stack, &function.def, &schedule)).await
    }

    /// Stops serving and polling; returns when every task has ended.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}
