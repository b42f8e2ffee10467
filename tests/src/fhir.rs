//! A FHIR R4 server stand-in that holds vcare to the spec's update rules
//! (RESTful API, "update" and "conditional update"): a search by
//! `identifier` answers a `searchset` Bundle; `PUT [type]?identifier=`
//! creates when nothing matches (201), updates the one match (200) and is
//! 412 for several; `PUT [type]/[id]` needs `If-Match: W/"<versionId>"` of
//! the current version (428 without, 412 for another) and a body whose id
//! is the path's. Every version is kept, so tests see the order of states.
//! Faults: the next answers scripted (503, 429, ...), resources refused
//! (422 with an OperationOutcome), another writer's edit between vcare's
//! read and write.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};

#[derive(Default)]
struct Server {
    /// (type, id) → every version, oldest first.
    resources: HashMap<(String, String), Vec<Value>>,
    next_id: usize,
    /// Statuses to answer the next requests with, before any rule.
    faults: VecDeque<u16>,
    /// Resources whose JSON holds one of these are refused (422).
    refused: Vec<String>,
    /// Bump the matched resource's version once before the next update.
    edit_before_next_update: bool,
    requests: Vec<(String, String)>,
}

type Shared = Arc<Mutex<Server>>;

pub struct FhirStandIn {
    pub url: String,
    server: Shared,
    task: tokio::task::JoinHandle<()>,
}

fn fhir(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert("content-type", "application/fhir+json".parse().unwrap());
    r
}

fn outcome(status: StatusCode, code: &str, text: &str) -> Response {
    let body = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]});
    fhir(status, body)
}

fn identifier_of(query: &Option<String>) -> Option<(String, String)> {
    let q = query.as_deref()?;
    let (_, v) = form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "identifier")?;
    let (system, value) = v.split_once('|')?;
    Some((system.to_owned(), value.to_owned()))
}

fn has_identifier(resource: &Value, (system, value): &(String, String)) -> bool {
    resource["identifier"]
        .as_array()
        .is_some_and(|ids| ids.iter().any(|i| i["system"] == *system && i["value"] == *value))
}

impl Server {
    fn matches(&self, kind: &str, identifier: &(String, String)) -> Vec<(String, Value)> {
        self.resources
            .iter()
            .filter(|((t, _), versions)| t == kind && has_identifier(versions.last().unwrap(), identifier))
            .map(|((_, id), versions)| (id.clone(), versions.last().unwrap().clone()))
            .collect()
    }

    fn store(&mut self, kind: &str, id: &str, mut resource: Value, created: bool) -> Response {
        let text = resource.to_string();
        if self.refused.iter().any(|r| text.contains(r.as_str())) {
            return outcome(StatusCode::UNPROCESSABLE_ENTITY, "business-rule", "refused by this server");
        }
        let versions = self.resources.entry((kind.to_owned(), id.to_owned())).or_default();
        let version = versions.len() + 1;
        resource["id"] = json!(id);
        resource["meta"] = json!({"versionId": version.to_string(), "lastUpdated": chrono::Utc::now().to_rfc3339()});
        versions.push(resource.clone());
        let mut r = fhir(if created { StatusCode::CREATED } else { StatusCode::OK }, resource);
        r.headers_mut().insert("etag", format!("W/\"{version}\"").parse().unwrap());
        r
    }

    fn edit(&mut self, kind: &str, id: &str) {
        if std::mem::take(&mut self.edit_before_next_update) {
            let versions = self.resources.get_mut(&(kind.to_owned(), id.to_owned())).unwrap();
            let mut other = versions.last().unwrap().clone();
            other["meta"]["versionId"] = json!((versions.len() + 1).to_string());
            versions.push(other);
        }
    }
}

async fn search(State(s): State<Shared>, Path(kind): Path<String>, RawQuery(query): RawQuery) -> Response {
    let mut s = s.lock().unwrap();
    s.requests.push(("GET".into(), kind.clone()));
    if let Some(status) = s.faults.pop_front() {
        return outcome(StatusCode::from_u16(status).unwrap(), "transient", "scripted");
    }
    let Some(identifier) = identifier_of(&query) else {
        return outcome(StatusCode::BAD_REQUEST, "invalid", "search by identifier=system|value only");
    };
    let entries: Vec<Value> = s.matches(&kind, &identifier).into_iter().map(|(_, r)| json!({"resource": r})).collect();
    fhir(
        StatusCode::OK,
        json!({"resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries}),
    )
}

fn body_of(headers: &HeaderMap, body: &str) -> Result<Value, Box<Response>> {
    let json_type = headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|t| t.contains("fhir+json"));
    if !json_type {
        return Err(Box::new(outcome(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "application/fhir+json only",
        )));
    }
    serde_json::from_str(body).map_err(|_| Box::new(outcome(StatusCode::BAD_REQUEST, "invalid", "not JSON")))
}

async fn conditional_update(
    State(s): State<Shared>,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut s = s.lock().unwrap();
    s.requests.push(("PUT".into(), kind.clone()));
    if let Some(status) = s.faults.pop_front() {
        return outcome(StatusCode::from_u16(status).unwrap(), "transient", "scripted");
    }
    let resource = match body_of(&headers, &body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let Some(identifier) = identifier_of(&query) else {
        return outcome(StatusCode::BAD_REQUEST, "invalid", "a conditional update names its identifier");
    };
    if resource["resourceType"] != kind.as_str() || !has_identifier(&resource, &identifier) {
        return outcome(StatusCode::BAD_REQUEST, "invalid", "the resource is not what the condition names");
    }
    match s.matches(&kind, &identifier).as_slice() {
        [] => {
            s.next_id += 1;
            let id = format!("{}-{}", kind.to_lowercase(), s.next_id);
            s.store(&kind, &id, resource, true)
        }
        [(id, _)] => {
            let id = id.clone();
            s.store(&kind, &id, resource, false)
        }
        _ => outcome(StatusCode::PRECONDITION_FAILED, "multiple-matches", "more than one resource matches"),
    }
}

async fn update(
    State(s): State<Shared>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut s = s.lock().unwrap();
    s.requests.push(("PUT".into(), format!("{kind}/{id}")));
    if let Some(status) = s.faults.pop_front() {
        return outcome(StatusCode::from_u16(status).unwrap(), "transient", "scripted");
    }
    let resource = match body_of(&headers, &body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    if resource["resourceType"] != kind.as_str() || resource["id"] != id.as_str() {
        return outcome(StatusCode::BAD_REQUEST, "invalid", "the body's type and id must be the path's");
    }
    if !s.resources.contains_key(&(kind.clone(), id.clone())) {
        return outcome(StatusCode::NOT_FOUND, "not-found", "no such resource");
    }
    s.edit(&kind, &id);
    let Some(wanted) = headers.get("if-match").and_then(|v| v.to_str().ok()) else {
        return outcome(StatusCode::PRECONDITION_REQUIRED, "required", "updates are version-aware here: If-Match");
    };
    let current = s.resources[&(kind.clone(), id.clone())].len();
    if wanted != format!("W/\"{current}\"") {
        return outcome(StatusCode::PRECONDITION_FAILED, "conflict", "the version has moved on");
    }
    s.store(&kind, &id, resource, false)
}

impl FhirStandIn {
    pub async fn start() -> Self {
        let server: Shared = Arc::default();
        let app = axum::Router::new()
            .route("/{kind}", get(search).put(conditional_update))
            .route("/{kind}/{id}", put(update))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, server, task }
    }

    /// Every version of the resource of `kind` with this identifier value.
    pub fn versions(&self, kind: &str, value: &str) -> Vec<Value> {
        let s = self.server.lock().unwrap();
        s.resources
            .iter()
            .filter(|((t, _), v)| t == kind && v.last().unwrap()["identifier"][0]["value"] == value)
            .flat_map(|(_, v)| v.clone())
            .collect()
    }

    /// Every resource's every version.
    pub fn all(&self) -> Vec<Value> {
        self.server.lock().unwrap().resources.values().flatten().cloned().collect()
    }

    pub fn fail_next(&self, statuses: impl IntoIterator<Item = u16>) {
        self.server.lock().unwrap().faults.extend(statuses);
    }

    /// Refuses (422) every resource whose JSON holds `marker`.
    pub fn refuse_containing(&self, marker: &str) {
        self.server.lock().unwrap().refused.push(marker.to_owned());
    }

    pub fn edit_before_next_update(&self) {
        self.server.lock().unwrap().edit_before_next_update = true;
    }

    /// (method, path) of every request so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.server.lock().unwrap().requests.clone()
    }
}

impl Drop for FhirStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}
