//! `dlr-sweep`, on a schedule: the delivery receipts that did not come.
//!
//! - A notification sent through a provider that sends receipts and with
//!   no final receipt `RECEIPT_EXPIRY_HOURS` (72) after sending is marked
//!   `expired` (its sent attempt's delivery). Found through a sparse index
//!   of awaiting notifications bucketed by day — no scans; days back to
//!   `RECEIPT_LOOKBACK_DAYS` (7) past the cutoff are re-read, so a sweep
//!   that did not run for a while catches up. A late `delivered` still
//!   replaces `expired`.
//! - Receipts kept as pending (their attempt was not recorded when they
//!   came) are applied now that it is; one still without its attempt after
//!   the expiry time is given up (it stays in the history).
//! - Notifications not yet sent whose expected next step is overdue (their
//!   queue message was lost: dead-lettered after repeated crashes, or an
//!   enqueue that failed after the accept) are put back on the dispatch
//!   queue, at most `RECONCILE_BATCH` (500) a run, and counted as
//!   `OverdueNotifications` (an alarm watches it).

use std::sync::Arc;

use aws_lambda_events::cloudwatch_events::CloudWatchEvent;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use vcare_aws::SdkConfig;
use vcare_comms::Notifications;
use vcare_domain::notification::Status;
use vcare_domain::receipt::{Delivery, receipt_event};
use vcare_runtime::{Env, Error, EventFunction, LambdaEvent};
use vcare_store::Applied;

pub struct Sweep {
    comms: Notifications,
    expiry: Duration,
    lookback_days: i64,
    reconcile_batch: usize,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Swept {
    pub expired: usize,
    pub receipts_applied: usize,
    pub receipts_given_up: usize,
    pub requeued: usize,
}

pub fn sweep(env: &Env, sdk: &SdkConfig) -> Result<Sweep, Error> {
    Ok(Sweep {
        comms: Notifications::from_env(env, sdk)?,
        expiry: Duration::hours(env.bounded("RECEIPT_EXPIRY_HOURS", 72, 1, 24 * 30)?),
        lookback_days: env.bounded("RECEIPT_LOOKBACK_DAYS", 7, 1, 90)?,
        reconcile_batch: env.bounded("RECONCILE_BATCH", 500, 1, 10_000)?,
    })
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<impl vcare_runtime::Function + use<>, Error> {
    let s = Arc::new(sweep(env, sdk)?);
    Ok(EventFunction::new(move |_: LambdaEvent<CloudWatchEvent>| {
        let s = s.clone();
        async move { s.run(Utc::now()).await }
    }))
}

impl Sweep {
    pub async fn run(&self, now: DateTime<Utc>) -> Result<Swept, Error> {
        let cutoff = now - self.expiry;
        let mut swept = Swept::default();
        for back in (0..=self.lookback_days).rev() {
            let day = cutoff - Duration::days(back);
            for (clinic, id) in self.comms.store.awaiting_receipts(day, cutoff).await? {
                if self.expire(&clinic, &id, cutoff, now).await? {
                    swept.expired += 1;
                }
            }
        }
        for (kept, received) in self.comms.store.pending_receipts(100).await? {
            let r = &kept.reference;
            let event = receipt_event(r, &kept.provider, &kept.delivery);
            match self.comms.store.apply_receipt(r, &kept.delivery, event.as_ref(), now).await? {
                Applied::Advanced | Applied::Stale => {
                    self.comms.store.set_receipt_pending(r, &kept.hash, false, received).await?;
                    swept.receipts_applied += 1;
                }
                Applied::OtherProvider => {
                    self.comms.store.set_receipt_pending(r, &kept.hash, false, received).await?;
                    tracing::warn!(notification_id = %r.notification_id, attempt_id = %r.attempt_id, "receipt for another provider's attempt dropped");
                    swept.receipts_given_up += 1;
                }
                Applied::UnknownAttempt if received < cutoff => {
                    self.comms.store.set_receipt_pending(r, &kept.hash, false, received).await?;
                    tracing::warn!(notification_id = %r.notification_id, attempt_id = %r.attempt_id, "receipt without its attempt given up");
                    swept.receipts_given_up += 1;
                }
                Applied::UnknownAttempt => {}
            }
        }
        swept.requeued = self.comms.requeue_overdue(now, self.lookback_days, self.reconcile_batch).await?;
        if swept.requeued > 0 {
            vcare_runtime::metrics::count_n("OverdueNotifications", swept.requeued as u64, &[]);
        }
        if swept != Swept::default() {
            tracing::info!(?swept, "receipt sweep");
        }
        Ok(swept)
    }

    /// Marks the sent attempt's delivery `expired` if it still has no final
    /// receipt; takes the notification out of the awaiting index either way.
    async fn expire(&self, clinic: &str, id: &str, cutoff: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, Error> {
        let expired = std::sync::atomic::AtomicBool::new(false);
        let changed = self
            .comms
            .store
            .update(clinic, id, |n| {
                if n.awaiting_receipt_since.is_none_or(|since| since >= cutoff) {
                    return None;
                }
                let mut next = n.clone();
                next.awaiting_receipt_since = None;
                if let Some(a) = n.attempts.iter().rev().find(|a| a.status == Status::Sent) {
                    let current = next.delivery.get(&a.attempt_id);
                    if Delivery::advances_to(current, Status::Expired) {
                        let d = Delivery {
                            provider: current.and_then(|c| c.provider.clone()),
                            ..Delivery::new(Status::Expired, now)
                        };
                        next.delivery.insert(a.attempt_id.clone(), d);
                        expired.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                next.updated_at = now;
                Some((next, Vec::new()))
            })
            .await?;
        Ok(changed.is_some_and(|(_, changed)| changed) && expired.load(std::sync::atomic::Ordering::Relaxed))
    }
}
