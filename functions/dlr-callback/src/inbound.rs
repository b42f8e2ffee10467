//! An inbound SMS: authentic (Twilio's and Vonage's signatures as for
//! receipts; the gateway's `X-Timestamp` + `X-Signature`, within 5
//! minutes), read into one shape, carried out by the notification service
//! ([`vcare_comms::inbound`]), 204. A bad signature is 401 and changes
//! nothing; a body that is not an inbound message is 400; a body over
//! [`MAX_BODY_BYTES`] is 413. Nothing logged names the sender or the text.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use vcare_domain::consent::InboundSms;
use vcare_http::Problem;
use vcare_providers::inbound::{gateway_inbound, gateway_inbound_valid, twilio_inbound, vonage_inbound};

use crate::{INBOUND_PATH, MAX_BODY_BYTES, Receipts, bad_signature};

/// How far the gateway's `X-Timestamp` may be from now.
const GATEWAY_MAX_SKEW_SECONDS: i64 = 300;

impl Receipts {
    fn inbound_message(
        &self,
        provider: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<InboundSms, Problem> {
        let malformed = || Problem::bad_request("not an inbound message this endpoint understands");
        match provider {
            "twilio" => twilio_inbound(&self.twilio_signed(INBOUND_PATH, query, headers, body)?).ok_or_else(malformed),
            "vonage" => vonage_inbound(&self.vonage_signed(headers, body)?).ok_or_else(malformed),
            "gateway" => {
                let Some(secret) = &self.gateway_inbound else { return Err(bad_signature(provider)) };
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                let now = self.clock.now().timestamp();
                if !gateway_inbound_valid(
                    secret.expose(),
                    header("x-timestamp"),
                    header("x-signature"),
                    body,
                    now,
                    GATEWAY_MAX_SKEW_SECONDS,
                ) {
                    return Err(bad_signature(provider));
                }
                let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| malformed())?;
                gateway_inbound(&value).ok_or_else(malformed)
            }
            _ => Err(Problem::not_found("no such inbound provider")),
        }
    }
}

pub(crate) async fn receive(
    State(r): State<Arc<Receipts>>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Problem::new(StatusCode::PAYLOAD_TOO_LARGE, format!("at most {MAX_BODY_BYTES} bytes")));
    }
    let message = r.inbound_message(&provider, &query.unwrap_or_default(), &headers, &body)?;
    let outcome = r.inbound.take(&r.comms, &provider, &message, r.clock.now()).await?;
    vcare_runtime::metrics::count("InboundSms", &[("provider", &provider)]);
    tracing::info!(provider, outcome = ?outcome, "inbound SMS");
    Ok(StatusCode::NO_CONTENT)
}
