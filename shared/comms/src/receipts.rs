//! A delivery receipt, already authenticated, taken in: its raw body kept
//! sealed in the attempt's history (a repeat is kept once), and the
//! delivery state advanced with one conditional update that carries its
//! `delivered`/`failed` event, so each is emitted once however often
//! receipts repeat. A receipt whose attempt is not recorded yet is kept as
//! pending; the sweep applies it later.

use chrono::{DateTime, Utc};
use vcare_domain::notification::Status;
use vcare_domain::receipt::{Delivery, ReceiptRef, receipt_event};
use vcare_store::{Applied, KeptReceipt};

use crate::{Notifications, NotifyError};

/// What a provider reported, as read from its signed receipt.
pub struct Receipt<'a> {
    pub provider: &'a str,
    pub reference: &'a ReceiptRef,
    /// The provider's own words for the status, and its error code.
    pub provider_status: &'a str,
    pub code: Option<&'a str>,
    /// vcare's status for it; `None`: a status that says nothing new.
    pub status: Option<Status>,
    /// The receipt's identity (a hash of the provider and its parameters).
    pub hash: String,
    /// The raw body, kept sealed.
    pub raw: &'a [u8],
}

/// What became of a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptTaken {
    /// Kept for the first time (not a repeat).
    pub new: bool,
    /// How it applied to the delivery state; `None`: nothing to apply.
    pub applied: Option<Applied>,
}

impl Notifications {
    pub async fn take_receipt(&self, r: &Receipt<'_>, now: DateTime<Utc>) -> Result<ReceiptTaken, NotifyError> {
        let Receipt { provider, reference, .. } = *r;
        let reported = |status| Delivery {
            provider_status: Some(r.provider_status.to_owned()),
            code: r.code.map(str::to_owned),
            ..Delivery::new(status, now).by(provider)
        };
        let delivery = r.status.map(reported);
        let context = vcare_crypto::context(&reference.clinic_id, &reference.notification_id, "receipt");
        let sealed_raw = self.envelope.seal(r.raw, &context).await.map_err(crate::BackendError::from)?;
        let kept = KeptReceipt {
            reference: reference.clone(),
            hash: r.hash.clone(),
            provider: provider.to_owned(),
            delivery: delivery.clone().unwrap_or_else(|| reported(Status::Sent)),
            sealed_raw,
        };
        let apply = async {
            match &delivery {
                Some(d) => {
                    let event = receipt_event(reference, provider, d);
                    self.store.apply_receipt(reference, d, event.as_ref(), now).await.map(Some)
                }
                None => Ok(None),
            }
        };
        let (new, applied) = tokio::join!(self.store.keep_receipt(&kept, now), apply);
        let (new, applied) = (new?, applied?);
        if applied == Some(Applied::OtherProvider) {
            tracing::warn!(provider, notification_id = %reference.notification_id, attempt_id = %reference.attempt_id, "a receipt names another provider's attempt; not applied");
        }
        if applied == Some(Applied::UnknownAttempt) {
            self.store.set_receipt_pending(reference, &kept.hash, true, now).await?;
        }
        Ok(ReceiptTaken { new, applied })
    }
}
