//! The functions a template declares and the events that trigger them.

use serde_json::Value;

use crate::GatewayError;
use crate::resolve::Stack;
use crate::template::Template;

#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub logical_id: String,
    /// The cargo binary (and crate) the function is built from.
    pub binary: String,
    pub timeout_seconds: u64,
    pub environment: std::collections::HashMap<String, String>,
    pub events: Vec<EventSource>,
}

#[derive(Debug, Clone)]
pub enum EventSource {
    Http(HttpRoute),
    Sqs(SqsSource),
    Stream(StreamSource),
    Schedule(ScheduleSource),
}

#[derive(Debug, Clone)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
    /// The authorizer the route uses; `None` for `Authorizer: NONE`.
    pub authorizer: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SqsSource {
    pub name: String,
    pub queue_arn: String,
    pub batch_size: usize,
    pub report_failures: bool,
    /// Batches in flight at once: Lambda starts with five concurrent
    /// pollers, capped by `ScalingConfig.MaximumConcurrency`.
    pub pollers: usize,
}

#[derive(Debug, Clone)]
pub struct StreamSource {
    pub name: String,
    pub table_id: String,
    pub batch_size: usize,
    pub trim_horizon: bool,
    pub report_failures: bool,
    /// -1: until the record expires, as Lambda's default.
    pub max_retries: i64,
    pub filters: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct ScheduleSource {
    pub name: String,
    pub expression: String,
    pub every: std::time::Duration,
    pub input: Option<Value>,
}

/// The JWT authorizer of the template's HTTP API.
#[derive(Debug, Clone)]
pub struct JwtAuthorizer {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct HttpApi {
    pub default_authorizer: Option<String>,
    pub authorizers: Vec<JwtAuthorizer>,
}

pub fn http_api(template: &Template, stack: &Stack) -> Result<HttpApi, GatewayError> {
    let mut api = HttpApi::default();
    for (_, r) in template.of_type("AWS::Serverless::HttpApi") {
        let auth = stack.resolve(&r["Properties"]["Auth"])?;
        api.default_authorizer = auth["DefaultAuthorizer"].as_str().map(str::to_owned);
        for (name, a) in auth["Authorizers"].as_object().into_iter().flatten() {
            let jwt = &a["JwtConfiguration"];
            let audiences = match &jwt["audience"] {
                Value::Array(items) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                Value::String(s) => vec![s.clone()],
                _ => Vec::new(),
            };
            api.authorizers.push(JwtAuthorizer {
                name: name.clone(),
                issuer: jwt["issuer"].as_str().unwrap_or_default().to_owned(),
                audiences,
            });
        }
    }
    Ok(api)
}

pub fn functions(template: &Template, stack: &Stack, api: &HttpApi) -> Result<Vec<FunctionDef>, GatewayError> {
    let mut out = Vec::new();
    for (id, r) in template.of_type("AWS::Serverless::Function") {
        let binary = r["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .ok_or_else(|| GatewayError::Template(format!("{id}: Metadata.BuildProperties.Binary names no binary")))?
            .to_owned();
        let timeout_seconds = match template.function_property(r, "Timeout") {
            None => 3,
            Some(v) => stack
                .resolve_string(v)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| GatewayError::Template(format!("{id}: Timeout is not a number of seconds")))?,
        };
        let mut environment = std::collections::HashMap::new();
        for (k, v) in template.function_environment(r) {
            environment.insert(
                k.clone(),
                stack.resolve_string(&v).map_err(|e| GatewayError::Template(format!("{id}.{k}: {e}")))?,
            );
        }
        let mut events = Vec::new();
        for (name, e) in r["Properties"]["Events"].as_object().into_iter().flatten() {
            let p = stack.resolve(&e["Properties"])?;
            let kind = e["Type"].as_str().unwrap_or_default();
            let batch = |default: usize| p["BatchSize"].as_u64().map_or(default, |n| n as usize);
            let report =
                p["FunctionResponseTypes"].as_array().is_some_and(|t| t.iter().any(|v| v == "ReportBatchItemFailures"));
            let event = match kind {
                "HttpApi" => {
                    let authorizer = match p["Auth"]["Authorizer"].as_str() {
                        Some("NONE") => None,
                        Some(named) => Some(named.to_owned()),
                        None => api.default_authorizer.clone(),
                    };
                    EventSource::Http(HttpRoute {
                        method: p["Method"].as_str().unwrap_or("ANY").to_uppercase(),
                        path: p["Path"].as_str().unwrap_or("/").to_owned(),
                        authorizer,
                    })
                }
                "SQS" => EventSource::Sqs(SqsSource {
                    name: name.clone(),
                    queue_arn: p["Queue"].as_str().unwrap_or_default().to_owned(),
                    batch_size: batch(10).clamp(1, 10),
                    report_failures: report,
                    pollers: p["ScalingConfig"]["MaximumConcurrency"]
                        .as_u64()
                        .or_else(|| p["ScalingConfig"]["MaximumConcurrency"].as_str().and_then(|v| v.parse().ok()))
                        .map_or(5, |max| max.clamp(1, 5) as usize),
                }),
                "DynamoDB" => {
                    let stream = p["Stream"].as_str().unwrap_or_default();
                    let table_id = stack.logical_id_of(stream).ok_or_else(|| {
                        GatewayError::Template(format!("{id}.{name}: stream {stream} is no local table's"))
                    })?;
                    EventSource::Stream(StreamSource {
                        name: name.clone(),
                        table_id: table_id.to_owned(),
                        batch_size: batch(100).max(1),
                        trim_horizon: p["StartingPosition"] == "TRIM_HORIZON",
                        report_failures: report,
                        max_retries: p["MaximumRetryAttempts"].as_i64().unwrap_or(-1),
                        filters: p["FilterCriteria"]["Filters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|f| f["Pattern"].as_str().and_then(|s| serde_json::from_str(s).ok()))
                            .collect(),
                    })
                }
                "Schedule" | "ScheduleV2" => {
                    let expression = p
                        .get("Schedule")
                        .or_else(|| p.get("ScheduleExpression"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if p["Enabled"] == false || p["State"] == "DISABLED" {
                        continue;
                    }
                    EventSource::Schedule(ScheduleSource {
                        name: name.clone(),
                        expression: expression.to_owned(),
                        every: rate(expression).map_err(|e| GatewayError::Template(format!("{id}.{name}: {e}")))?,
                        input: p["Input"].as_str().and_then(|s| serde_json::from_str(s).ok()),
                    })
                }
                other => {
                    return Err(GatewayError::Template(format!(
                        "{id}.{name}: event type {other} is not supported locally"
                    )));
                }
            };
            events.push(event);
        }
        out.push(FunctionDef { logical_id: id.to_owned(), binary, timeout_seconds, environment, events });
    }
    Ok(out)
}

/// How often a schedule fires: `rate(N unit)`; a `cron(...)` whose minute
/// field is `*` or `0/N` fires every minute or every N minutes locally.
pub fn rate(expression: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("schedule {expression:?} is not rate(N minute[s]|hour[s]|day[s]) or a minutely cron");
    if let Some(inner) = expression.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        let (n, unit) = inner.trim().split_once(' ').ok_or_else(bad)?;
        let n: u64 = n.parse().map_err(|_| bad())?;
        let seconds = match unit.trim() {
            "minute" | "minutes" => 60,
            "hour" | "hours" => 3600,
            "day" | "days" => 86_400,
            _ => return Err(bad()),
        };
        if n == 0 {
            return Err(bad());
        }
        return Ok(std::time::Duration::from_secs(n * seconds));
    }
    if let Some(inner) = expression.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
        let fields: Vec<_> = inner.split_whitespace().collect();
        if fields.len() == 6 && fields[1..].iter().all(|f| matches!(*f, "*" | "?")) {
            let minutes = match fields[0] {
                "*" => 1,
                step => step
                    .strip_prefix("0/")
                    .or_else(|| step.strip_prefix("*/"))
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(bad)?,
            };
            return Ok(std::time::Duration::from_secs(60 * minutes));
        }
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::rate;
    use std::time::Duration;

    #[test]
    fn schedule_expressions() {
        assert_eq!(rate("rate(1 minute)"), Ok(Duration::from_secs(60)));
        assert_eq!(rate("rate(5 minutes)"), Ok(Duration::from_secs(300)));
        assert_eq!(rate("rate(2 hours)"), Ok(Duration::from_secs(7200)));
        assert_eq!(rate("cron(* * * * ? *)"), Ok(Duration::from_secs(60)));
        assert_eq!(rate("cron(0/5 * * * ? *)"), Ok(Duration::from_secs(300)));
        for bad in ["rate(0 minutes)", "rate(1 fortnight)", "cron(0 12 * * ? *)", "every minute"] {
            assert!(rate(bad).is_err(), "{bad}");
        }
    }
}
