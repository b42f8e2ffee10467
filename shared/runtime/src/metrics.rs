//! Metrics as CloudWatch Embedded Metric Format: one JSON line on stdout
//! per data point, which CloudWatch Logs turns into a metric (namespace
//! `vcare`). Dimensions name things (provider, channel), never people.
//! Each count is also kept in-process, so tests that run a function in
//! the same process can see what it counted.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

pub const NAMESPACE: &str = "vcare";

fn counts() -> &'static Mutex<HashMap<String, u64>> {
    static COUNTS: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    COUNTS.get_or_init(Default::default)
}

fn series(name: &str, dimensions: &[(&str, &str)]) -> String {
    let mut s = name.to_owned();
    for (k, v) in dimensions {
        s.push_str(&format!("|{k}={v}"));
    }
    s
}

/// The EMF line for one data point (a `Count`).
pub fn emf_line(name: &str, value: f64, dimensions: &[(&str, &str)], timestamp_ms: i64) -> String {
    emf_line_in(name, value, "Count", dimensions, timestamp_ms)
}

/// The EMF line for one data point. The metric is published both under
/// `dimensions` and without any (`[]`), so alarms can watch the total.
pub fn emf_line_in(name: &str, value: f64, unit: &str, dimensions: &[(&str, &str)], timestamp_ms: i64) -> String {
    let mut root = serde_json::Map::new();
    root.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>(), Vec::<&str>::new()],
                "Metrics": [{"Name": name, "Unit": unit}],
            }],
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), serde_json::Value::String((*v).into()));
    }
    root.insert(name.into(), serde_json::json!(value));
    serde_json::Value::Object(root).to_string()
}

/// Counts one occurrence of `name` under `dimensions`.
pub fn count(name: &str, dimensions: &[(&str, &str)]) {
    count_n(name, 1, dimensions);
}

/// Counts `n` occurrences of `name` under `dimensions` as one data point.
pub fn count_n(name: &str, n: u64, dimensions: &[(&str, &str)]) {
    println!("{}", emf_line(name, n as f64, dimensions, chrono::Utc::now().timestamp_millis()));
    *counts().lock().unwrap_or_else(|e| e.into_inner()).entry(series(name, dimensions)).or_default() += n;
}

/// A measured value (a lag, in `Milliseconds`, ...).
pub fn record(name: &str, value: f64, unit: &str, dimensions: &[(&str, &str)]) {
    println!("{}", emf_line_in(name, value, unit, dimensions, chrono::Utc::now().timestamp_millis()));
}

/// How often `name` under exactly these `dimensions` was counted in this process.
pub fn counted(name: &str, dimensions: &[(&str, &str)]) -> u64 {
    counts().lock().unwrap_or_else(|e| e.into_inner()).get(&series(name, dimensions)).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_declares_its_metric_and_dimensions() {
        let line: serde_json::Value =
            serde_json::from_str(&emf_line("DlrSignatureRejected", 1.0, &[("provider", "twilio")], 42)).unwrap();
        assert_eq!(line["_aws"]["Timestamp"], 42);
        let m = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "vcare");
        assert_eq!(m["Dimensions"], serde_json::json!([["provider"], []]), "by provider, and the total");
        assert_eq!(m["Metrics"][0]["Name"], "DlrSignatureRejected");
        assert_eq!(line["provider"], "twilio");
        assert_eq!(line["DlrSignatureRejected"], 1.0);
        let before = counted("TestMetric", &[("a", "b")]);
        count("TestMetric", &[("a", "b")]);
        assert_eq!(counted("TestMetric", &[("a", "b")]), before + 1);
        assert_eq!(counted("TestMetric", &[("a", "c")]), 0);
    }
}
