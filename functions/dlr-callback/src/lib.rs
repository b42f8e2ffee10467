//! `dlr-callback`: `POST /v1/communication/dlr/{provider}` — delivery
//! receipts from the in-country gateway, Twilio and Vonage.
//!
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

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use vcare_aws::SdkConfig;
use vcare_comms::{Notifications, Receipt, ReceiptTaken};
use vcare_crypto::KmsMac;
use vcare_domain::receipt::ReceiptRef;
use vcare_http::{HttpFunction, Problem};
use vcare_providers::receipts::{
    Params, ParsedReceipt, VonageSigning, gateway_receipt, receipt_hash, twilio_receipt, twilio_valid, vonage_receipt,
    vonage_valid,
};
use vcare_providers::{Secret, Secrets};
use vcare_runtime::{Clock, ConfigError, Env};

pub const PATH: &str = "/v1/communication/dlr";

pub struct Receipts {
    comms: Notifications,
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
        mac: vcare_comms::receipt_mac(env, sdk),
        public_base: env.get("DLR_CALLBACK_BASE_URL").map(|b| b.trim_end_matches('/').to_owned()),
        twilio_token: secrets.get(env, "TWILIO_AUTH_TOKEN").await?,
        vonage: secrets.get(env, "VONAGE_SIGNATURE_SECRET").await?.map(|s| (signing, s)),
        vonage_max_skew: env.bounded("VONAGE_MAX_SKEW_SECONDS", 300, 1, 3600)?,
        clock: Clock::system(),
    })
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new().route(&format!("{PATH}/{{provider}}"), post(receive));
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
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
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
                let (Some(token), Some(base)) = (&self.twilio_token, &self.public_base) else {
                    return Err(bad_signature(provider));
                };
                let params = form(body);
                let url = match query {
                    "" => format!("{base}{PATH}/twilio"),
                    q => format!("{base}{PATH}/twilio?{q}"),
                };
                if !twilio_valid(token.expose(), &url, &params, header("x-twilio-signature")) {
                    return Err(bad_signature(provider));
                }
                let parsed = twilio_receipt(&params).ok_or_else(malformed)?;
                Ok((params, parsed))
            }
            "vonage" => {
                let Some((signing, secret)) = &self.vonage else { return Err(bad_signature(provider)) };
                let params = if is_json(headers) { json_params(body).unwrap_or_default() } else { form(body) };
                let now = self.clock.now().timestamp();
                if !vonage_valid(
                    *signing,
                    secret.expose(),
                    &params,
                    body,
                    header("authorization"),
                    now,
                    self.vonage_max_skew,
                ) {
                    return Err(bad_signature(provider));
                }
                let parsed = vonage_receipt(&params).ok_or_else(malformed)?;
                Ok((params, parsed))
            }
            _ => Err(Problem::not_found("no such receipt provider")),
        }
    }
}

async fn receive(
    State(r): State<Arc<Receipts>>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    let query = query.unwrap_or_default();
    let (params, parsed) = r.authentic(&provider, &query, &headers, &body).await?;
    // Authentic; now where it belongs. The provider's echo of the attempt
    // (signed) must name the same attempt as the URL's ref.
    let reference = query_param(&query, "ref")
        .as_deref()
        .and_then(ReceiptRef::parse)
        .ok_or_else(|| Problem::bad_request("the receipt URL has no valid ref"))?;
    if parsed.echoed_reference.as_ref().is_some_and(|echo| *echo != reference.attempt_id) {
        return Err(bad_signature(&provider));
    }
    let now = r.clock.now();
    let receipt = Receipt {
        provider: &provider,
        reference: &reference,
        provider_status: &parsed.provider_status,
        code: parsed.code.as_deref(),
        status: parsed.status,
        hash: receipt_hash(&provider, &params),
        raw: &body,
    };
    let ReceiptTaken { new, applied } = r.comms.take_receipt(&receipt, now).await?;
    if let Some(done) = parsed.done_at {
        let lag = (now - done).num_milliseconds() as f64;
        vcare_runtime::metrics::record("DlrLag", lag, "Milliseconds", &[("provider", &provider)]);
    }
    tracing::info!(
        provider,
        notification_id = %reference.notification_id,
        attempt_id = %reference.attempt_id,
        provider_status = %parsed.provider_status,
        applied = ?applied,
        repeat = !new,
        "delivery receipt"
    );
    Ok(StatusCode::NO_CONTENT)
}
