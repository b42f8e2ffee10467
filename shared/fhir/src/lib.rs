//! A FHIR R4 server (`FhirBaseUrl`), as vcare writes to it: which resource
//! an identifier names now (a search), and its update to a new state —
//! against the version just read (`If-Match`), so an edit made in between
//! is never overwritten unseen, or by a conditional update on the
//! identifier when there is none yet. Answers are read bounded; nothing of
//! them is logged but their status.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, IF_MATCH};
use serde_json::Value;
use vcare_domain::fhir::Target;
use vcare_runtime::http::{LazyClient, failure};

const FHIR_JSON: &str = "application/fhir+json";
/// Most of an answer read: a search for one identifier is small.
const MAX_ANSWER: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct FhirServer {
    base: String,
    http: LazyClient,
    timeout: Duration,
}

/// The resource an identifier names on the server: its id and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub id: String,
    pub version_id: Option<String>,
}

/// What went wrong talking to the server, said without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// No answer in time, or no connection.
    Unreachable(String),
    /// An answer with this status.
    Status(u16),
    /// A search answer that is not a Bundle of that resource type, or names
    /// more than one resource with the identifier.
    Unusable(&'static str),
}

impl std::fmt::Display for Trouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) => write!(f, "the FHIR server did not answer: {why}"),
            Self::Status(s) => write!(f, "the FHIR server answered {s}"),
            Self::Unusable(why) => write!(f, "the FHIR server's search answer: {why}"),
        }
    }
}

impl FhirServer {
    /// `base` without a trailing slash, like `https://fhir.example.org/r4`.
    pub fn new(base: &str, timeout: Duration) -> Self {
        Self { base: base.trim_end_matches('/').to_owned(), http: LazyClient::new(), timeout }
    }

    fn client(&self) -> Result<&reqwest::Client, Trouble> {
        self.http.get().map_err(|e| Trouble::Unreachable(e.to_owned()))
    }

    /// `[base]/<Type>?identifier=<system>|<value>`, the value encoded.
    fn by_identifier(&self, target: &Target) -> String {
        let query: String =
            form_urlencoded::Serializer::new(String::new()).append_pair("identifier", &target.identifier()).finish();
        format!("{}/{}?{query}", self.base, target.resource_type())
    }

    /// The resource `target`'s identifier names, if any.
    pub async fn current(&self, target: &Target) -> Result<Option<Current>, Trouble> {
        let url = format!("{}&_elements=identifier,meta", self.by_identifier(target));
        let request = self.client()?.get(url).header(ACCEPT, FHIR_JSON).timeout(self.timeout);
        let (status, body) = send(request).await?;
        if !(200..300).contains(&status) {
            return Err(Trouble::Status(status));
        }
        let bundle: Value = serde_json::from_slice(&body).map_err(|_| Trouble::Unusable("not JSON"))?;
        if bundle["resourceType"] != "Bundle" {
            return Err(Trouble::Unusable("not a Bundle"));
        }
        let found: Vec<&Value> = bundle["entry"]
            .as_array()
            .map(|e| e.iter().map(|e| &e["resource"]).filter(|r| r["resourceType"] == target.resource_type()).collect())
            .unwrap_or_default();
        match found.as_slice() {
            [] => Ok(None),
            [one] => {
                let id = one["id"].as_str().ok_or(Trouble::Unusable("a resource without an id"))?;
                let version_id = one["meta"]["versionId"].as_str().map(str::to_owned);
                Ok(Some(Current { id: id.to_owned(), version_id }))
            }
            _ => Err(Trouble::Unusable("more than one resource has the identifier")),
        }
    }

    /// Writes `resource` as `target`'s new state: over `current` at its
    /// version, else by a conditional update on the identifier (the server
    /// creates it). Answers the server's status.
    pub async fn put(&self, target: &Target, mut resource: Value, current: Option<&Current>) -> Result<u16, Trouble> {
        let client = self.client()?;
        let request = match current {
            Some(c) => {
                resource["id"] = Value::String(c.id.clone());
                let url = format!("{}/{}/{}", self.base, target.resource_type(), c.id);
                let request = client.put(url);
                match &c.version_id {
                    Some(v) => request.header(IF_MATCH, format!("W/\"{v}\"")),
                    None => request,
                }
            }
            None => client.put(self.by_identifier(target)),
        };
        let request = request
            .header(CONTENT_TYPE, FHIR_JSON)
            .header(ACCEPT, FHIR_JSON)
            .timeout(self.timeout)
            .body(resource.to_string());
        Ok(send(request).await?.0)
    }
}

/// Sends and reads at most [`MAX_ANSWER`] bytes of the answer.
async fn send(request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), Trouble> {
    let mut response = request.send().await.map_err(|e| Trouble::Unreachable(failure(&e).into()))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Trouble::Unreachable(failure(&e).into()))? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(Trouble::Unusable("the answer is too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}
