//! Notifications that should have moved on and did not: their queue
//! message was lost (a dead letter after repeated crashes, an enqueue that
//! failed after the accept's write). Put back on the dispatch queue, which
//! decides what they need (a stale claim is written off, a wait goes on).

use chrono::{DateTime, Duration, Utc};
use vcare_domain::lifecycle;

use crate::{BackendError, Notifications};
use vcare_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl Notifications {
    /// Re-enqueues up to `limit` overdue notifications whose reconcile time
    /// fell in the last `lookback_days` days; returns how many. Each one's
    /// reconcile time moves on by the slack first, so the next sweep does not
    /// queue it again while dispatch works on it.
    pub async fn requeue_overdue(
        &self,
        now: DateTime<Utc>,
        lookback_days: i64,
        limit: usize,
    ) -> Result<usize, ReconcileError> {
        let mut requeued = 0;
        for back in (0..=lookback_days).rev() {
            let day = now - Duration::days(back);
            for (clinic, id) in self.store.overdue(day, now, limit - requeued).await? {
                let moved = self
                    .store
                    .update(&clinic, &id, |n| {
                        if !lifecycle::overdue(n, now) {
                            return None;
                        }
                        let mut next = n.clone();
                        next.reconcile_at = Some(lifecycle::reconcile_at(now));
                        Some((next, Vec::new()))
                    })
                    .await?;
                if moved.is_some_and(|(_, changed)| changed) {
                    tracing::warn!(notification_id = %id, "overdue notification put back on the dispatch queue");
                    self.enqueue(&clinic, &id, 0).await?;
                    requeued += 1;
                }
                if requeued >= limit {
                    return Ok(requeued);
                }
            }
        }
        Ok(requeued)
    }
}
