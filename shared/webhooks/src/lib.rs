//! One webhook delivery (Standard Webhooks) to a clinic's endpoint, safe
//! against server-side request forgery:
//!
//! - every connection's addresses come from [`CheckedResolver`]: a host
//!   whose A/AAAA records include one address vcare may not reach (private,
//!   loopback, link-local — the metadata service —, multicast, reserved) is
//!   refused whole, at the moment of connecting, so a name that changes
//!   what it points to after the endpoint was saved is caught;
//! - an address written in the URL is checked the same way (the resolver
//!   never sees it);
//! - redirects are never followed (a 3xx is a failed delivery), no proxy
//!   from the environment is used, the answer is read to at most
//!   [`MAX_ANSWER`] bytes, and the whole exchange ends at the timeout.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use vcare_domain::webhooks::{AddressRefusal, Secret, check_address, check_url, sign};

/// Most of an endpoint's answer read (it says nothing vcare needs).
pub const MAX_ANSWER: usize = 4096;
/// How long a name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an endpoint may not be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Url(&'static str),
    Unresolvable,
    Address(AddressRefusal),
    /// `http://` to something that is not loopback alone.
    PlainHttp,
    /// The resolver refused the host when the delivery connected.
    AtConnect(String),
}

impl Refusal {
    pub fn describe(&self) -> String {
        match self {
            Self::Url(why) => (*why).to_owned(),
            Self::Unresolvable => "url: the host does not resolve".into(),
            Self::Address(a) => format!("url: the host resolves to {}", a.describe()),
            Self::PlainHttp => "url: http only to loopback, where allowed".into(),
            Self::AtConnect(why) => why.clone(),
        }
    }
}

/// The addresses of `host`, each allowed, or why not.
pub async fn resolve_checked(host: &str, port: u16, allow_loopback: bool) -> Result<Vec<SocketAddr>, Refusal> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(found)) => found.collect(),
            _ => return Err(Refusal::Unresolvable),
        },
    };
    if addrs.is_empty() {
        return Err(Refusal::Unresolvable);
    }
    for a in &addrs {
        check_address(a.ip(), allow_loopback).map_err(Refusal::Address)?;
    }
    Ok(addrs)
}

/// Whether `url` may be an endpoint now: its form, and every address its
/// host resolves to. `http://` only where loopback is allowed, and then to
/// loopback alone.
pub async fn check_endpoint(url: &str, allow_loopback: bool) -> Result<(), Refusal> {
    let (host, port) = check_url(url, allow_loopback).map_err(|r| Refusal::Url(r.describe()))?;
    let addrs = resolve_checked(&host, port, allow_loopback).await?;
    let plain = !url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    if plain && !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(Refusal::PlainHttp);
    }
    Ok(())
}

/// reqwest's resolver for deliveries: only checked addresses.
#[derive(Debug, Clone)]
pub struct CheckedResolver {
    pub allow_loopback: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (host, allow) = (name.as_str().to_owned(), self.allow_loopback);
        Box::pin(async move {
            match resolve_checked(&host, 0, allow).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                Err(why) => Err(why.describe().into()),
            }
        })
    }
}

/// What one delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Delivered(u16),
    /// 410: the endpoint is gone; disable it.
    Gone,
    /// Another answer, or none: try again later. Never the answer's body.
    Failed { status: Option<u16>, reason: String },
    /// Not sent: the endpoint may not be reached.
    Refused(Refusal),
}

/// Sends deliveries: one client, its connections only to checked
/// addresses, made at the first delivery (a cold start that only fans out,
/// or the endpoints API, never loads the trust roots).
#[derive(Clone)]
pub struct Sender {
    http: Arc<OnceLock<Result<reqwest::Client, String>>>,
    allow_loopback: bool,
    timeout: Duration,
}

/// One delivery's parts.
pub struct Delivery<'a> {
    pub url: &'a str,
    pub secret: &'a Secret,
    /// `webhook-id`: the same on every try of this delivery.
    pub id: &'a str,
    pub timestamp: i64,
    pub body: &'a [u8],
}

impl Sender {
    /// `timeout` bounds the whole exchange, connect and answer included.
    pub fn new(allow_loopback: bool, timeout: Duration) -> Self {
        Self { http: Arc::default(), allow_loopback, timeout }
    }

    /// Whether the client has been made (by a delivery).
    pub fn is_made(&self) -> bool {
        self.http.get().is_some()
    }

    fn client(&self) -> Result<&reqwest::Client, &str> {
        let (allow_loopback, timeout) = (self.allow_loopback, self.timeout);
        let made = self.http.get_or_init(|| {
            reqwest::Client::builder()
                .dns_resolver(Arc::new(CheckedResolver { allow_loopback }))
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .timeout(timeout)
                .user_agent("vcare-webhooks/1")
                .build()
                .map_err(|e| format!("no HTTP client: {e}"))
        });
        made.as_ref().map_err(String::as_str)
    }

    pub async fn deliver(&self, d: Delivery<'_>) -> Outcome {
        let (host, port) = match check_url(d.url, self.allow_loopback) {
            Ok(hp) => hp,
            Err(r) => return Outcome::Refused(Refusal::Url(r.describe())),
        };
        // An address in the URL never reaches the resolver: check it here.
        if let Ok(ip) = host.parse::<IpAddr>()
            && let Err(r) = check_address(ip, self.allow_loopback)
        {
            return Outcome::Refused(Refusal::Address(r));
        }
        let plain = !d.url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        if plain {
            match resolve_checked(&host, port, self.allow_loopback).await {
                Ok(addrs) if addrs.iter().all(|a| a.ip().is_loopback()) => {}
                Ok(_) => return Outcome::Refused(Refusal::PlainHttp),
                Err(r) => return Outcome::Refused(r),
            }
        }
        let http = match self.client() {
            Ok(http) => http,
            Err(why) => return Outcome::Failed { status: None, reason: why.into() },
        };
        let request = http
            .post(d.url)
            .header("content-type", "application/json")
            .header("webhook-id", d.id)
            .header("webhook-timestamp", d.timestamp.to_string())
            .header("webhook-signature", sign(d.secret, d.id, d.timestamp, d.body))
            .body(d.body.to_vec());
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return match refused_at_connect(&e) {
                    Some(why) => Outcome::Refused(Refusal::AtConnect(why)),
                    None => Outcome::Failed { status: None, reason: vcare_runtime::http::failure(&e).into() },
                };
            }
        };
        let status = response.status().as_u16();
        // Read a little of the answer, then let the connection go.
        let mut read = 0;
        while read < MAX_ANSWER {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        match status {
            200..=299 => Outcome::Delivered(status),
            410 => Outcome::Gone,
            300..=399 => Outcome::Failed { status: Some(status), reason: "a redirect (not followed)".into() },
            _ => Outcome::Failed { status: Some(status), reason: format!("answered {status}") },
        }
    }
}

/// The resolver's refusal, wherever it stands in the error's chain.
fn refused_at_connect(e: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if text.starts_with("url: the host") {
            return Some(text);
        }
        source = s.source();
    }
    None
}
