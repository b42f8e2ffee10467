//! A delivery receipt: authentic, where it belongs, taken in.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use vcare_comms::{Receipt, ReceiptTaken};
use vcare_domain::receipt::ReceiptRef;
use vcare_http::Problem;
use vcare_providers::receipts::receipt_hash;

use crate::{Receipts, bad_signature, query_param};

pub(crate) async fn receive(
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
