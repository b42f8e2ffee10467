//! The dispatch service: carries out the notification lifecycle that
//! [`vcare_domain::lifecycle`] decides, one step at a time.
//!
//! Per notification: the next step is decided from the notification just
//! read ([`next_step`]); a wait is re-enqueued with its delay (a new
//! message, so waiting spends none of the queue's receives); a route is
//! claimed with a version-checked write *before* its provider is called,
//! so a concurrent or redelivered copy cannot send it again; the outcome
//! is recorded ([`lifecycle::record`]) and a transient failure with tries
//! left comes back after its backoff. Every change to the notification is
//! a pure transition of the domain handed to the store's versioned update.

mod config;
mod send;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use vcare_domain::clinic::{PerClinic, QuietHours};
use vcare_domain::consent::{Gate, sent_to};
use vcare_domain::ids;
use vcare_domain::lifecycle::{
    self, AttemptResult, Claim, DispatchSettings, SendOutcome, Step, WaitReason, holds_claim, next_step,
};
use vcare_domain::notification::{Channel, Notification, Status};
use vcare_providers::{Provider, RateLimiter};
use vcare_runtime::Error;

use crate::{DispatchMessage, Notifications};

pub use config::dispatcher;

pub struct Dispatcher {
    comms: Notifications,
    providers: Vec<Box<dyn Provider>>,
    limits: std::collections::HashMap<String, RateLimiter>,
    /// Claim timeout, tries, backoff; the quiet hours are per clinic, below.
    settings: DispatchSettings,
    quiet_hours: PerClinic<QuietHours>,
    /// Signs the gateway's receipt `ref` (KMS HMAC, `DLR_SIGNING_KEY_ID`).
    receipt_mac: Option<vcare_crypto::KmsMac>,
}

/// What became of one queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Sent,
    Failed,
    /// Every channel was opted out or suppressed.
    Suppressed,
    Requeued,
    Nothing,
}

type Versioned = (Notification, u64);

impl Dispatcher {
    pub fn provider_names(&self) -> Vec<(Channel, &'static str)> {
        self.providers.iter().map(|p| (p.channel(), p.name())).collect()
    }

    /// Handles the records concurrently; reports the ones that failed.
    pub async fn batch(self: &Arc<Self>, event: SqsEvent) -> SqsBatchResponse {
        vcare_runtime::sqs::batch(event, "dispatch record", |body| {
            let d = self.clone();
            async move {
                let m: DispatchMessage = serde_json::from_str(&body).map_err(|_| "not a dispatch message")?;
                d.handle(&m).await.map(|_| ())
            }
        })
        .await
    }

    /// One notification, until it is sent, requeued, or finally failed.
    pub async fn handle(&self, m: &DispatchMessage) -> Result<Handled, Error> {
        let routes = self.provider_names();
        let settings = DispatchSettings { quiet_hours: *self.quiet_hours.of(&m.clinic_id), ..self.settings };
        // What the recipient's preferences and the clinic's suppressions
        // allow: read once per message, only when it is about to be sent
        // or held by quiet hours (which the recipient's own may override).
        let mut gate: Option<Gate> = None;
        for _ in 0..(routes.len() * settings.max_tries + 3) {
            let now = self.comms.clock.now();
            let Some(known) = self.comms.store.get(&m.clinic_id, &m.notification_id).await? else {
                tracing::warn!(notification_id = %m.notification_id, "no such notification; message dropped");
                return Ok(Handled::Nothing);
            };
            let mut step = next_step(&known.0, now, &routes, &settings, gate.as_ref().unwrap_or(&Gate::open()));
            if gate.is_none() && matches!(step, Step::Send { .. } | Step::Wait { why: WaitReason::QuietHours, .. }) {
                let read = self.comms.gate(&known.0).await?;
                step = next_step(&known.0, now, &routes, &settings, gate.insert(read));
            }
            match step {
                Step::Done => return Ok(Handled::Nothing),
                Step::Wait { until, why } => {
                    if why == WaitReason::ClaimInFlight {
                        tracing::info!(notification_id = %m.notification_id, "an attempt is in flight; waiting until its claim can be judged");
                    }
                    return self.wait(known, until, now).await;
                }
                Step::WriteOff { attempt_id } => {
                    tracing::warn!(notification_id = %m.notification_id, attempt_id, "a claim outlived its timeout; written off");
                    self.comms.store.update_from(known, |c| lifecycle::write_off(c, &attempt_id, now)).await?;
                }
                Step::Skip { channel, reason } => {
                    tracing::info!(notification_id = %m.notification_id, channel = channel.as_str(), reason = reason.as_str(), "channel skipped");
                    vcare_runtime::metrics::count(
                        "DispatchSkipped",
                        &[("channel", channel.as_str()), ("reason", reason.as_str())],
                    );
                    self.comms.store.update_from(known, |c| lifecycle::skip(c, channel, reason, now)).await?;
                }
                Step::Exhausted => {
                    let (n, _, _) = self.comms.store.update_from(known, |c| lifecycle::fail(c, now)).await?;
                    if n.status == Status::Suppressed {
                        tracing::info!(notification_id = %m.notification_id, "every channel opted out or suppressed");
                        return Ok(Handled::Suppressed);
                    }
                    tracing::warn!(notification_id = %m.notification_id, "notification failed on every route");
                    return Ok(Handled::Failed);
                }
                Step::Send { channel, provider } => {
                    if let Some(done) = self.send(known, channel, provider, &settings).await? {
                        return Ok(done);
                    }
                }
            }
        }
        Err("too many steps for one notification".into())
    }

    /// Claims the route, calls its provider, records the outcome. `None`:
    /// go on with the next step (the claim was lost to another container,
    /// or the route failed and the next one is tried at once).
    async fn send(
        &self,
        known: Versioned,
        channel: Channel,
        provider: &str,
        settings: &DispatchSettings,
    ) -> Result<Option<Handled>, Error> {
        // The provider's own pace: wait a little, or come back later.
        if let Some(limiter) = self.limits.get(provider) {
            let wait = limiter.acquire();
            if wait > Duration::from_secs(2) {
                return self.requeue(&known.0, wait.as_secs() as i64 + 1).await.map(Some);
            }
            tokio::time::sleep(wait).await;
        }
        let attempt_id = ids::prefixed("att");
        let prepared = self.prepare(&known.0, &attempt_id, channel, provider).await?;
        let Some(claimed) = self.claim(known, Claim { attempt_id: &attempt_id, channel, provider }).await? else {
            return Ok(None);
        };
        let receipts = prepared.adapter.sends_receipts();
        let locale = prepared.locale();
        let (outcome, cleaned) = self.deliver(&claimed.0, &attempt_id, channel, prepared).await?;
        observe(&claimed.0, &attempt_id, channel, provider, &outcome);
        let jitter = Duration::from_millis(ids::random_u64() % (settings.retry_base.as_millis() as u64 + 1));
        let backoff = lifecycle::retry_delay(&outcome, &claimed.0, channel, provider, settings, jitter);
        let later = self.comms.clock.now();
        let retry_at = backoff.map(|b| later + chrono::Duration::from_std(b).unwrap_or_default());
        let result =
            AttemptResult { attempt_id: &attempt_id, outcome: &outcome, receipts, cleaned: cleaned.as_ref(), retry_at };
        // A provider's word that the number opted out is kept before the
        // outcome: a crash between them retries the route, which refuses again.
        self.suppress_refused(&claimed.0, channel, provider, &outcome, later).await?;
        let record = |c: &Notification| lifecycle::record(c, &result, later);
        // An SMS sent is the newest to its number, in the same transaction.
        let noted =
            if outcome.is_sent() && channel == Channel::Sms { sent_to(&claimed.0, locale, later) } else { None };
        let (after, _, _) = match noted {
            Some((hash, sent)) => self.comms.store.update_from_noting(claimed, record, &hash, &sent).await?,
            None => self.comms.store.update_from(claimed, record).await?,
        };
        if outcome.is_sent() {
            return Ok(Some(Handled::Sent));
        }
        match backoff {
            Some(backoff) => self.requeue(&after, backoff.as_secs() as i64).await.map(Some),
            None => Ok(None),
        }
    }

    /// Claims a route before calling its provider. `None`: someone else
    /// changed the notification. A write that failed may still have
    /// happened (a 500 or a timeout after the commit, and the SDK's retry
    /// then finds the version moved on): the attempt id tells, so the
    /// claim is read back and used rather than waited out and written off.
    async fn claim(&self, known: Versioned, c: Claim<'_>) -> Result<Option<Versioned>, Error> {
        let (clinic, id) = (known.0.clinic_id.clone(), known.0.notification_id.clone());
        let (seen, now, timeout) = (known.0.clone(), self.comms.clock.now(), self.settings.claim_timeout);
        let current = match self.comms.store.update_from(known, |n| lifecycle::claim(n, &seen, c, now, timeout)).await {
            Ok((n, version, true)) => return Ok(Some((n, version))),
            Ok((n, version, false)) => (n, version),
            Err(e) => match self.comms.store.get(&clinic, &id).await? {
                Some(current) if holds_claim(&current.0, c.attempt_id) => current,
                _ => return Err(e.into()),
            },
        };
        Ok(holds_claim(&current.0, c.attempt_id).then_some(current).inspect(|_| {
            tracing::info!(notification_id = %id, attempt_id = c.attempt_id, "the claim was written though its write was answered with an error");
        }))
    }

    /// Comes back at `until`: re-enqueued with that delay (at most one
    /// queue delay; a longer wait is re-enqueued again), the reconcile time
    /// moved first when the wait outlasts it ([`lifecycle::hold`]).
    async fn wait(&self, known: Versioned, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<Handled, Error> {
        let n = if lifecycle::hold(&known.0, until, now).is_some() {
            self.comms.store.update_from(known, |c| lifecycle::hold(c, until, now)).await?.0
        } else {
            known.0
        };
        self.requeue(&n, lifecycle::wait_seconds(until, now)).await
    }

    async fn requeue(&self, n: &Notification, delay: i64) -> Result<Handled, Error> {
        self.comms.enqueue(&n.clinic_id, &n.notification_id, delay).await?;
        Ok(Handled::Requeued)
    }
}

/// The attempt in the log and the SLO's metrics (failures / attempts).
fn observe(n: &Notification, attempt_id: &str, channel: Channel, provider: &str, outcome: &SendOutcome) {
    let id = &n.notification_id;
    match outcome.reason() {
        None => tracing::info!(notification_id = %id, attempt_id, channel = channel.as_str(), provider, "sent"),
        Some(reason) => tracing::warn!(
            notification_id = %id, attempt_id, channel = channel.as_str(), provider, reason,
            permanent = matches!(outcome, SendOutcome::Permanent { .. }), "attempt failed"
        ),
    }
    let dims = [("provider", provider), ("channel", channel.as_str())];
    vcare_runtime::metrics::count("DispatchAttempts", &dims);
    if !outcome.is_sent() {
        vcare_runtime::metrics::count("DispatchFailures", &dims);
    }
}
