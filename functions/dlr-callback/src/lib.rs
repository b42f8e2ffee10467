//! `dlr-callback`: what SMS providers post to vcare, signature-checked:
//! delivery receipts (`POST /v1/communication/dlr/{provider}`, below) and
//! inbound SMS (`POST /v1/communication/inbound/{provider}`, [`inbound`]).
//!
//! Receipts:
//! 1. The provider's signature, checked before anything is read or
//!    written: the gateway's `sig` (KMS `VerifyMac` over the URL's `ref`),
//!    `X-Twilio-Signature` over the full URL and every parameter, Vonage's
//!    `sig` or signed JWT. A missing or bad one is 401, changes nothing, and
//!    is counted (`DlrSignatureRejected`, by provider).
//! 2. The receipt's status mapped to vcare's; the URL's
//!    `ref=<clinic>~<notification>~<attempt>` says where it belongs (the
//!    provider's echoed reference must agree).
//! 3. Taken in by the notification service (`Notifications::take_receipt`): the
//!    raw receipt kept sealed, the delivery state advanced once, with its
//!    event; a receipt before its attempt is kept pending for the sweep.
//! 4. 204.

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use vcare_aws::SdkConfig;
use vcare_comms::Notifications;
use vcare_comms::inbound::Inbound;
use vcare_crypto::KmsMac;
use vcare_http::{HttpFunction, Problem};
use vcare_providers::receipts::{
    Params, ParsedReceipt, VonageSigning, gateway_receipt, twilio_receipt, twilio_valid, vonage_receipt, vonage_valid,
};
use vcare_providers::{Secret, Secrets};
use vcare_runtime::{Clock, ConfigError, Env};

mod inbound;
mod receipt;

pub const PATH: &str = "/v1/communication/dlr";
pub const INBOUND_PATH: &str = "/v1/communication/inbound";

/// The largest post either route reads.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub struct Receipts {
    comms: Notifications,
    inbound: Inbound,
    /// The gateway's inbound secret (`SMS_GATEWAY_INBOUND_SECRET`).
    gateway_inbound: Option<Secret>,
    mac: Option<KmsMac>,
    /// The public base URL receipts are posted to (`DLR_CALLBACK_BASE_URL`):
    /// Twilio signs the full URL it called.
    public_base: Option<String>,
    twilio_token: Option<Secret>,
    vonage: Option<(VonageSigning, Secret)>,
    vonage_max_skew: i64,
    clock: Clock,
}

pub async fn receipts(env: &Env, sdk: &SdkConfig) -> Result<Receipts, vcare_runtime::Error> {
    let secrets = Secrets::new(sdk);
    let signing: VonageSigning = env
        .get("VONAGE_SIGNATURE_METHOD")
        .unwrap_or("md5hash")
        .parse()
        .map_err(|reason| ConfigError::Invalid { name: "VONAGE_SIGNATURE_METHOD".into(), reason })?;
    Ok(Receipts {
        comms: Notifications::from_env(env, sdk)?,
        inbound: Inbound::from_env(env, sdk)?,
        gateway_inbound: secrets.get(env, "SMS_GATEWAY_INBOUND_SECRET").await?,
        mac: vcare_comms::receipt_mac(env, sdk),
        public_base: env.get("DLR_CALLBACK_BASE_URL").map(|b| b.trim_end_matches('/').to_owned()),
        twilio_token: secrets.get(env, "TWILIO_AUTH_TOKEN").await?,
        vonage: secrets.get(env, "VONAGE_SIGNATURE_SECRET").await?.map(|s| (signing, s)),
        vonage_max_skew: env.bounded("VONAGE_MAX_SKEW_SECONDS", 300, 1, 3600)?,
        clock: Clock::system(),
    })
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new()
        .route(&format!("{PATH}/{{provider}}"), post(receipt::receive))
        .route(&format!("{INBOUND_PATH}/{{provider}}"), post(inbound::receive));
    Ok(HttpFunction::serving(routes, receipts(env, sdk).await?))
}

fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn form(body: &[u8]) -> Params {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A flat JSON object as parameters (strings and numbers as text).
fn json_params(body: &[u8]) -> Option<Params> {
    let serde_json::Value::Object(map) = serde_json::from_slice(body).ok()? else { return None };
    Some(
        map.into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                serde_json::Value::Number(n) => Some((k, n.to_string())),
                serde_json::Value::Bool(b) => Some((k, b.to_string())),
                _ => None,
            })
            .collect(),
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"))
}

fn bad_signature(provider: &str) -> Problem {
    vcare_runtime::metrics::count("DlrSignatureRejected", &[("provider", provider)]);
    tracing::warn!(provider, "delivery receipt refused: missing or bad signature");
    Problem::unauthorized("missing or bad signature")
}

impl Receipts {
    /// Checks the signature and reads the receipt: `Err` is the answer.
    async fn authentic(
        &self,
        provider: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(Params, ParsedReceipt), Problem> {
        let malformed = || Problem::bad_request("not a delivery receipt this endpoint understands");
        match provider {
            "gateway" => {
                let (Some(mac), Some(reference), Some(sig)) =
                    (&self.mac, query_param(query, "ref"), query_param(query, "sig"))
                else {
                    return Err(bad_signature(provider));
                };
                if !mac.verify(&reference, &sig).await.map_err(|e| {
                    tracing::error!(error = %e, "KMS VerifyMac failed");
                    Problem::service_unavailable("the receipt cannot be checked right now; retry")
                })? {
                    return Err(bad_signature(provider));
                }
                let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| malformed())?;
                let parsed = gateway_receipt(&value).ok_or_else(malformed)?;
                Ok((json_params(body).ok_or_else(malformed)?, parsed))
            }
            "twilio" => {
                let params = self.twilio_signed(PATH, query, headers, body)?;
                let parsed = twilio_receipt(&params).ok_or_else(malformed)?;
                Ok((params, parsed))
            }
            "vonage" => {
                let params = self.vonage_signed(headers, body)?;
                let parsed = vonage_receipt(&params).ok_or_else(malformed)?;
                Ok((params, parsed))
            }
            _ => Err(Problem::not_found("no such receipt provider")),
        }
    }

    /// Twilio's parameters, if `X-Twilio-Signature` signs them and the full
    /// URL Twilio called (`path` under the public base).
    fn twilio_signed(&self, path: &str, query: &str, headers: &HeaderMap, body: &[u8]) -> Result<Params, Problem> {
        let (Some(token), Some(base)) = (&self.twilio_token, &self.public_base) else {
            return Err(bad_signature("twilio"));
        };
        let params = form(body);
        let url = match query {
            "" => format!("{base}{path}/twilio"),
            q => format!("{base}{path}/twilio?{q}"),
        };
        let signature = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok());
        if !twilio_valid(token.expose(), &url, &params, signature) {
            return Err(bad_signature("twilio"));
        }
        Ok(params)
    }

    /// Vonage's parameters (form or JSON), if its `sig` or signed JWT checks.
    fn vonage_signed(&self, headers: &HeaderMap, body: &[u8]) -> Result<Params, Problem> {
        let Some((signing, secret)) = &self.vonage else { return Err(bad_signature("vonage")) };
        let params = if is_json(headers) { json_params(body).unwrap_or_default() } else { form(body) };
        let now = self.clock.now().timestamp();
        let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
        if !vonage_valid(*signing, secret.expose(), &params, body, authorization, now, self.vonage_max_skew) {
            return Err(bad_signature("vonage"));
        }
        Ok(params)
    }
}
