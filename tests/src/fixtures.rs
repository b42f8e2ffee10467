//! Test functions for tests/fixtures/gateway.yaml: each records what reached
//! it in a shared [`Probe`], so tests assert what the gateway delivered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Request};
use axum::routing::get;
use serde_json::{Value, json};
use vcare_http::HttpFunction;
use vcare_local::Registry;
use vcare_runtime::{BoxFuture, Context, Error, Function};

#[derive(Default, Clone)]
pub struct Probe {
    /// SQS message body → times the function saw it.
    pub sqs_seen: Arc<Mutex<HashMap<String, u32>>>,
    /// DynamoDB stream records, in delivery order.
    pub stream_records: Arc<Mutex<Vec<Value>>>,
    /// Keys of stream records the recorder should fail once.
    pub fail_once: Arc<Mutex<Vec<String>>>,
    /// Scheduled events received.
    pub ticks: Arc<Mutex<Vec<Value>>>,
}

impl Probe {
    pub fn sqs_count(&self, body: &str) -> u32 {
        self.sqs_seen.lock().expect("lock").get(body).copied().unwrap_or(0)
    }
}

pub fn template() -> std::path::PathBuf {
    crate::root().join("tests/fixtures/gateway.yaml")
}

/// A raw JSON function from a closure over the probe.
struct Raw<F>(F);

impl<F> Function for Raw<F>
where
    F: Fn(Value) -> Result<Value, Error> + Send + Sync + 'static,
{
    fn invoke(&self, event: Value, _context: Context) -> BoxFuture<'_, Result<Value, Error>> {
        let result = (self.0)(event);
        Box::pin(async move { result })
    }
}

/// Echoes the caller (as `vcare_http::Authenticated` reads it), the raw claims and
/// the request it got.
fn echo_router() -> Router {
    async fn echo(
        caller: Result<vcare_http::Authenticated, vcare_http::Problem>,
        Path(id): Path<String>,
        req: Request,
    ) -> axum::Json<Value> {
        let claims = match req.extensions().get::<lambda_http::request::RequestContext>() {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => {
                json!(ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|j| j.claims.clone()))
            }
            _ => Value::Null,
        };
        let caller = caller
            .ok()
            .map(|c| json!({"userId": c.user_id, "clinicId": c.clinic_id, "roles": format!("{:?}", c.roles)}));
        let method = req.method().to_string();
        let query = req.uri().query().map(str::to_owned);
        let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.map(|b| b.to_vec()).unwrap_or_default();
        axum::Json(json!({
            "id": id, "method": method, "query": query, "caller": caller, "claims": claims,
            "body": String::from_utf8_lossy(&body),
        }))
    }
    Router::new()
        .route("/echo/{id}", axum::routing::any(echo))
        .route("/open", get(|| async { axum::Json(json!({"open": true})) }))
        .route("/panic", get(panics))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                "too late"
            }),
        )
}

async fn panics() -> &'static str {
    panic!("test panic")
}

pub fn registry(probe: &Probe) -> Registry {
    let mut r = Registry::default();
    r.add("echo", |_, _| async { Ok(HttpFunction::new(echo_router())) });
    let seen = probe.sqs_seen.clone();
    r.add("flaky", move |_, _| {
        let seen = seen.clone();
        async move {
            Ok(Raw(move |event: Value| {
                let mut failures = Vec::new();
                for record in event["Records"].as_array().into_iter().flatten() {
                    let body = record["body"].as_str().unwrap_or_default().to_owned();
                    *seen.lock().expect("lock").entry(body.clone()).or_default() += 1;
                    if body.starts_with("poison") {
                        failures.push(json!({"itemIdentifier": record["messageId"]}));
                    }
                }
                Ok(json!({"batchItemFailures": failures}))
            }))
        }
    });
    let (records, fail_once) = (probe.stream_records.clone(), probe.fail_once.clone());
    r.add("recorder", move |_, _| {
        let (records, fail_once) = (records.clone(), fail_once.clone());
        async move {
            Ok(Raw(move |event: Value| {
                for record in event["Records"].as_array().into_iter().flatten() {
                    let key = record["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap_or_default().to_owned();
                    let mut fail = fail_once.lock().expect("lock");
                    if let Some(i) = fail.iter().position(|k| *k == key) {
                        fail.remove(i);
                        return Ok(
                            json!({"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}),
                        );
                    }
                    records.lock().expect("lock").push(record.clone());
                }
                Ok(json!({"batchItemFailures": []}))
            }))
        }
    });
    let ticks = probe.ticks.clone();
    r.add("tick", move |_, _| {
        let ticks = ticks.clone();
        async move {
            Ok(Raw(move |event: Value| {
                ticks.lock().expect("lock").push(event);
                Ok(Value::Null)
            }))
        }
    });
    r
}
