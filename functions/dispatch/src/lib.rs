//! `dispatch`: the SQS-triggered worker that sends notifications.
//!
//! Each message names a notification (ids only). Records of a batch run
//! concurrently; one that fails unexpectedly is reported alone
//! (`batchItemFailures`) and the queue's redrive takes it to the DLQ in
//! the end. Per notification:
//! 1. done already (sent or final)? nothing to do — redelivery is harmless;
//! 2. not due (`sendAt`, the clinic's quiet hours)? re-enqueued with a delay, no sleeping;
//! 3. the next route (channel, provider) is claimed with a version-checked
//!    write *before* the provider is called, so a concurrent or redelivered
//!    copy cannot send it again; a claim left by a crash is honoured until
//!    `CLAIM_TIMEOUT_SECONDS` and then written off;
//! 4. the outcome is recorded: sent (and the `sent` event), transient
//!    (re-enqueued with exponential backoff and jitter, or Retry-After), or
//!    permanent (not retried); after `MAX_TRIES_PER_PROVIDER` transient
//!    failures or a permanent one the next provider of the channel is tried
//!    at once, then the next channel; with every route exhausted the
//!    notification is `failed` (and the `failed` event), reasons kept per
//!    attempt.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_comms::{Comms, DispatchMessage, MAX_QUEUE_DELAY_SECONDS};
use vcare_domain::clinic::{PerClinic, QuietHours};
use vcare_domain::events::{DomainEvent, NOTIFICATION_FAILED, NOTIFICATION_SENT};
use vcare_domain::ids;
use vcare_domain::lifecycle::{self, DispatchSettings, Step, TimeBudget, WaitReason, next_step};
use vcare_domain::notification::{Attempt, Channel, Notification, Status, failures, token_hash};
use vcare_domain::receipt::{Delivery, ReceiptRef};
use vcare_providers::{
    Apns, Fcm, GatewaySms, Outcome, Outgoing, Provider, SendGrid, Ses, Twilio, Vonage, WebPush, http_client,
};
use vcare_runtime::{ConfigError, Env, Error, EventFunction, LambdaEvent};

/// A recipient after dead push tokens were dropped.
pub struct Cleaned {
    sealed: String,
    push_tokens: usize,
}

pub struct Dispatcher {
    comms: Comms,
    providers: Vec<Box<dyn Provider>>,
    limits: std::collections::HashMap<String, vcare_providers::RateLimiter>,
    /// Claim timeout and tries; the quiet hours are per clinic, below.
    settings: DispatchSettings,
    retry_base: Duration,
    quiet_hours: PerClinic<QuietHours>,
    /// Signs the gateway's receipt `ref` (KMS HMAC, `DLR_SIGNING_KEY_ID`).
    receipt_mac: Option<vcare_crypto::KmsMac>,
}

/// A send made ready: the opened recipient and message, the adapter, and
/// the receipt URL's query.
struct Prepared<'a> {
    recipient: vcare_domain::notification::Recipient,
    message: vcare_domain::templates::Rendered,
    adapter: &'a dyn Provider,
    query: Option<String>,
}

/// What became of one queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Sent,
    Failed,
    Requeued,
    Nothing,
}

/// The configured providers, in failover order per channel: `SMS_PROVIDERS`
/// (default `gateway,twilio`) and `EMAIL_PROVIDERS` (default `ses,sendgrid`);
/// a provider without its settings is left out.
async fn providers(env: &Env, sdk: &SdkConfig) -> Result<Vec<Box<dyn Provider>>, Error> {
    let kms = aws_sdk_kms::Client::new(sdk);
    let http = http_client(Duration::from_millis(env.bounded("PROVIDER_TIMEOUT_MS", 5000, 100, 30_000)?));
    let dlr = |provider: &str| {
        env.get("DLR_CALLBACK_BASE_URL").map(|b| format!("{}/v1/communication/dlr/{provider}", b.trim_end_matches('/')))
    };
    let mut out: Vec<Box<dyn Provider>> = Vec::new();
    let order = |c| vcare_providers::order(env, c);
    for name in order(Channel::Sms).into_iter().chain(order(Channel::Email)).chain(order(Channel::Push)) {
        match name.as_str() {
            "gateway" => {
                if let (Some(url), Some(key)) =
                    (env.get("SMS_GATEWAY_URL"), vcare_comms::secret(env, &kms, "SMS_GATEWAY_API_KEY").await?)
                {
                    out.push(Box::new(GatewaySms {
                        base_url: url.to_owned(),
                        api_key: key,
                        from: env.get("SMS_GATEWAY_FROM").unwrap_or("vcare").to_owned(),
                        callback_url: dlr("gateway"),
                        http: http.clone(),
                    }));
                }
            }
            "twilio" => {
                if let (Some(sid), Some(token), Some(from)) = (
                    env.get("TWILIO_ACCOUNT_SID"),
                    vcare_comms::secret(env, &kms, "TWILIO_AUTH_TOKEN").await?,
                    env.get("TWILIO_FROM"),
                ) {
                    out.push(Box::new(Twilio {
                        base_url: env.get("TWILIO_BASE_URL").unwrap_or("https://api.twilio.com").to_owned(),
                        account_sid: sid.to_owned(),
                        auth_token: token,
                        from: from.to_owned(),
                        status_callback: dlr("twilio"),
                        http: http.clone(),
                    }));
                }
            }
            "vonage" => {
                if let (Some(key), Some(secret), Some(from)) = (
                    env.get("VONAGE_API_KEY"),
                    vcare_comms::secret(env, &kms, "VONAGE_API_SECRET").await?,
                    env.get("VONAGE_FROM"),
                ) {
                    out.push(Box::new(Vonage {
                        base_url: env.get("VONAGE_BASE_URL").unwrap_or("https://rest.nexmo.com").to_owned(),
                        api_key: key.to_owned(),
                        api_secret: secret,
                        from: from.to_owned(),
                        callback_url: dlr("vonage"),
                        http: http.clone(),
                    }));
                }
            }
            "fcm" => {
                if let (Some(project), Some(account)) =
                    (env.get("FCM_PROJECT_ID"), vcare_comms::secret(env, &kms, "FCM_SERVICE_ACCOUNT").await?)
                {
                    out.push(Box::new(Fcm::from_service_account(
                        &account,
                        project.to_owned(),
                        env.get("FCM_BASE_URL").unwrap_or("https://fcm.googleapis.com").to_owned(),
                        env.get("FCM_TOKEN_URL").map(str::to_owned),
                        http.clone(),
                    )?));
                }
            }
            "apns" => {
                if let (Some(team), Some(key_id), Some(topic), Some(key)) = (
                    env.get("APNS_TEAM_ID"),
                    env.get("APNS_KEY_ID"),
                    env.get("APNS_TOPIC"),
                    vcare_comms::secret(env, &kms, "APNS_PRIVATE_KEY").await?,
                ) {
                    out.push(Box::new(Apns::new(
                        env.get("APNS_BASE_URL").unwrap_or("https://api.push.apple.com").to_owned(),
                        topic.to_owned(),
                        team.to_owned(),
                        key_id.to_owned(),
                        &key,
                        Duration::from_millis(env.bounded("PROVIDER_TIMEOUT_MS", 5000, 100, 30_000)?),
                    )?));
                }
            }
            "webpush" => {
                if let (Some(subject), Some(key)) =
                    (env.get("VAPID_SUBJECT"), vcare_comms::secret(env, &kms, "VAPID_PRIVATE_KEY").await?)
                {
                    let timeout = Duration::from_millis(env.bounded("PROVIDER_TIMEOUT_MS", 5000, 100, 30_000)?);
                    let endpoints = vcare_comms::push_endpoints(env)?;
                    out.push(Box::new(WebPush::new(&key, subject.to_owned(), endpoints, timeout)?));
                }
            }
            "ses" => {
                if let Some(from) = env.get("EMAIL_FROM").filter(|_| env.get("SES_ENABLED") != Some("false")) {
                    out.push(Box::new(Ses { client: aws_sdk_sesv2::Client::new(sdk), from: from.to_owned() }));
                }
            }
            "sendgrid" => {
                if let (Some(key), Some(from)) =
                    (vcare_comms::secret(env, &kms, "SENDGRID_API_KEY").await?, env.get("EMAIL_FROM"))
                {
                    out.push(Box::new(SendGrid {
                        base_url: env.get("SENDGRID_BASE_URL").unwrap_or("https://api.sendgrid.com").to_owned(),
                        api_key: key,
                        from: from.to_owned(),
                        http: http.clone(),
                    }));
                }
            }
            "" => {}
            other => {
                return Err(ConfigError::Invalid {
                    name: "SMS_PROVIDERS/EMAIL_PROVIDERS".into(),
                    reason: format!("unknown provider {other}"),
                }
                .into());
            }
        }
    }
    Ok(out)
}

/// `QUIET_HOURS` for every clinic, `CLINIC_QUIET_HOURS` for the exceptions.
fn quiet_hours(env: &Env) -> Result<PerClinic<QuietHours>, ConfigError> {
    let invalid = |name: &str| {
        let name = name.to_owned();
        move |reason: String| ConfigError::Invalid { name, reason }
    };
    let default = env.get("QUIET_HOURS").unwrap_or("21-7").parse().map_err(invalid("QUIET_HOURS"))?;
    PerClinic::parse(default, env.get("CLINIC_QUIET_HOURS").unwrap_or("")).map_err(invalid("CLINIC_QUIET_HOURS"))
}

/// Checks at cold start that the claim timeout, the function's timeout and
/// the dispatch queue's visibility timeout and redrive fit together
/// ([`TimeBudget`]), reading the queue's own attributes: a deployment whose
/// settings could write off live work or dead-letter a waiting
/// notification does not start.
async fn check_time_budget(env: &Env, comms: &Comms, claim_timeout_seconds: i64) -> Result<(), Error> {
    let limits = comms.queue_limits().await?;
    let budget = TimeBudget {
        claim_timeout_seconds,
        function_timeout_seconds: env.bounded("FUNCTION_TIMEOUT_SECONDS", 30, 1, 900)?,
        visibility_timeout_seconds: limits.visibility_timeout_seconds,
        max_receive_count: limits.max_receive_count,
    };
    let problems = budget.problems();
    if problems.is_empty() {
        return Ok(());
    }
    Err(ConfigError::Invalid { name: "CLAIM_TIMEOUT_SECONDS".into(), reason: problems.join("; ") }.into())
}

pub async fn dispatcher(env: &Env, sdk: &SdkConfig) -> Result<Dispatcher, Error> {
    let comms = Comms::from_env(env, sdk)?;
    let claim_timeout = env.bounded("CLAIM_TIMEOUT_SECONDS", 120, 1, 3600)?;
    check_time_budget(env, &comms, claim_timeout).await?;
    Ok(Dispatcher {
        comms,
        providers: providers(env, sdk).await?,
        limits: vcare_providers::rate_limits(env)?,
        settings: DispatchSettings {
            claim_timeout: chrono::Duration::seconds(claim_timeout),
            max_tries: env.bounded("MAX_TRIES_PER_PROVIDER", 3, 1, 10)?,
            quiet_hours: QuietHours::NONE,
        },
        retry_base: Duration::from_secs(env.bounded("RETRY_BASE_SECONDS", 2, 0, 300)?),
        quiet_hours: quiet_hours(env)?,
        receipt_mac: env
            .get("DLR_SIGNING_KEY_ID")
            .map(|key| vcare_crypto::KmsMac::new(aws_sdk_kms::Client::new(sdk), key)),
    })
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<impl vcare_runtime::Function + use<>, Error> {
    let d = Arc::new(dispatcher(env, sdk).await?);
    Ok(EventFunction::new(move |event: LambdaEvent<SqsEvent>| {
        let d = d.clone();
        async move { Ok::<_, Error>(d.batch(event.payload).await) }
    }))
}

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
    /// Each step is decided by [`lifecycle::next_step`]; this carries it out.
    pub async fn handle(&self, m: &DispatchMessage) -> Result<Handled, Error> {
        let routes = self.provider_names();
        for _ in 0..(routes.len() * self.settings.max_tries + 3) {
            let now = Utc::now();
            let Some((n, version)) = self.comms.store.get(&m.clinic_id, &m.notification_id).await? else {
                tracing::warn!(notification_id = %m.notification_id, "no such notification; message dropped");
                return Ok(Handled::Nothing);
            };
            let settings = DispatchSettings { quiet_hours: *self.quiet_hours.of(&m.clinic_id), ..self.settings };
            let (channel, provider) = match next_step(&n, now, &routes, &settings) {
                Step::Done => return Ok(Handled::Nothing),
                Step::Wait { until, why } => {
                    if why == WaitReason::ClaimInFlight {
                        tracing::info!(notification_id = %m.notification_id, "an attempt is in flight; waiting until its claim can be judged");
                    }
                    return self.wait((n, version), until, now).await;
                }
                Step::WriteOff { attempt_id } => {
                    tracing::warn!(notification_id = %m.notification_id, attempt_id, "a claim outlived its timeout; written off");
                    let written_off =
                        Outcome::Transient { reason: "no outcome was recorded".into(), retry_after: None };
                    self.record((n, version), &attempt_id, written_off, None, None, now).await?;
                    continue;
                }
                Step::Exhausted => {
                    self.fail((n, version), now).await?;
                    return Ok(Handled::Failed);
                }
                Step::Send { channel, provider } => (channel, provider),
            };
            // The provider's own pace: wait a little, or come back later.
            if let Some(limiter) = self.limits.get(provider) {
                let wait = limiter.acquire();
                if wait > Duration::from_secs(2) {
                    return self.requeue(&n, wait.as_secs() as i64 + 1).await;
                }
                tokio::time::sleep(wait).await;
            }
            let attempt_id = ids::prefixed("att");
            let prepared = self.prepare(&n, &attempt_id, channel, provider).await?;
            let Some((claimed, claimed_version)) =
                self.claim((n, version), &attempt_id, channel, provider, now).await?
            else {
                continue;
            };
            let (outcome, cleaned) = self.send(&claimed, &attempt_id, channel, prepared).await?;
            match &outcome {
                Outcome::Sent { .. } => {
                    tracing::info!(notification_id = %m.notification_id, attempt_id, channel = channel.as_str(), provider, "sent")
                }
                Outcome::Transient { reason, .. } | Outcome::Permanent { reason } | Outcome::DeadToken { reason } => {
                    tracing::warn!(
                        notification_id = %m.notification_id, attempt_id, channel = channel.as_str(), provider, reason,
                        permanent = matches!(outcome, Outcome::Permanent { .. }), "attempt failed"
                    )
                }
            }
            let sent = matches!(outcome, Outcome::Sent { .. });
            // The SLO's numerator and denominator (the alarm watches failures / attempts).
            let dims = [("provider", provider), ("channel", channel.as_str())];
            vcare_runtime::metrics::count("DispatchAttempts", &dims);
            if !sent {
                vcare_runtime::metrics::count("DispatchFailures", &dims);
            }
            // A transient failure with tries left waits its backoff; the
            // notification says when, so the sweep knows it is not lost.
            let backoff = match &outcome {
                Outcome::Transient { retry_after, .. } => {
                    let tries = failures(&claimed.attempts, channel, provider) + 1;
                    (tries < self.settings.max_tries).then(|| self.backoff(tries, *retry_after))
                }
                _ => None,
            };
            let later = Utc::now();
            let retry_at = backoff.map(|b| later + chrono::Duration::from_std(b).unwrap_or_default());
            let after = self.record((claimed, claimed_version), &attempt_id, outcome, cleaned, retry_at, later).await?;
            if sent {
                return Ok(Handled::Sent);
            }
            if let Some(backoff) = backoff {
                return self.requeue(&after, backoff.as_secs() as i64).await;
            }
        }
        Err("too many steps for one notification".into())
    }

    /// Comes back at `until`: re-enqueued with that delay (at most SQS's
    /// 15 minutes; a longer wait is re-enqueued again). The message is a
    /// new one, so waiting spends none of the queue's receives. Only if the
    /// notification's reconcile time falls before the wait's end (a long
    /// `sendAt` or quiet-hours wait; never a claim, whose reconcile time is
    /// its judgement plus slack) is it moved first, so the sweep does not
    /// take a wait for a lost message: a write once per wait, not per message.
    async fn wait(
        &self,
        known: (Notification, u64),
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Handled, Error> {
        let back = until.min(now + chrono::Duration::seconds(lifecycle::MAX_WAIT_SECONDS));
        let expected = lifecycle::reconcile_at(back);
        let n = if known.0.reconcile_at.is_none_or(|at| at < back) {
            let (n, _, _) = self
                .comms
                .store
                .update_from(known, |current| {
                    if current.status.rank() >= Status::Sent.rank() || current.reconcile_at.is_some_and(|at| at >= back)
                    {
                        return None;
                    }
                    let mut next = current.clone();
                    next.reconcile_at = Some(expected);
                    Some((next, Vec::new()))
                })
                .await?;
            n
        } else {
            known.0
        };
        self.requeue(&n, lifecycle::wait_seconds(until, now)).await
    }

    fn backoff(&self, tries: usize, retry_after: Option<Duration>) -> Duration {
        let exp = self.retry_base.saturating_mul(1 << (tries.saturating_sub(1)).min(8));
        let jitter = Duration::from_millis(ids::random_u64() % (self.retry_base.as_millis() as u64 + 1));
        (exp + jitter).max(retry_after.unwrap_or_default()).min(Duration::from_secs(MAX_QUEUE_DELAY_SECONDS as u64))
    }

    async fn requeue(&self, n: &Notification, delay: i64) -> Result<Handled, Error> {
        self.comms.enqueue(&n.clinic_id, &n.notification_id, delay).await?;
        Ok(Handled::Requeued)
    }

    /// Claims a route before calling its provider: a version-checked write
    /// of a `sending` attempt. `None`: someone else changed the notification.
    /// A write that failed may still have happened (a 500 or a timeout after
    /// the commit, and the SDK's retry then finds the version moved on): the
    /// attempt id tells, so the claim is read back and used rather than
    /// waited out and written off as a failed try.
    async fn claim(
        &self,
        known: (Notification, u64),
        attempt_id: &str,
        channel: Channel,
        provider: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Notification, u64)>, Error> {
        let ours = |n: &Notification| {
            n.attempts.last().is_some_and(|a| a.attempt_id == attempt_id && a.status == Status::Sending)
        };
        let (clinic, id) = (known.0.clinic_id.clone(), known.0.notification_id.clone());
        let version_seen = known.0.clone();
        let written = self
            .comms
            .store
            .update_from(known, |current| {
                if *current != version_seen {
                    return None;
                }
                let mut next = current.clone();
                next.attempts.push(Attempt {
                    attempt_id: attempt_id.to_owned(),
                    channel,
                    provider: provider.to_owned(),
                    status: Status::Sending,
                    at: now,
                    error: None,
                    provider_message_id: None,
                    permanent: false,
                });
                next.delivery.insert(attempt_id.to_owned(), Delivery::new(Status::Sending, now).by(provider));
                if next.status.may_become(Status::Sending) {
                    next.status = Status::Sending;
                }
                next.channel = Some(channel);
                next.provider = Some(provider.to_owned());
                next.updated_at = now;
                // Judged stale at now + claim timeout: by then its outcome is written or it is written off.
                next.reconcile_at = Some(lifecycle::reconcile_at(now + self.settings.claim_timeout));
                Some((next, Vec::new()))
            })
            .await;
        let current = match written {
            Ok((n, version, true)) => return Ok(Some((n, version))),
            Ok((n, version, false)) => Some((n, version)),
            Err(e) => match self.comms.store.get(&clinic, &id).await? {
                Some(current) if ours(&current.0) => Some(current),
                _ => return Err(e.into()),
            },
        };
        Ok(current.filter(|(n, _)| ours(n)).inspect(|_| {
            tracing::info!(notification_id = %id, attempt_id, "the claim was written though its write was answered with an error");
        }))
    }

    /// Everything a send needs from KMS — the recipient and the message
    /// opened, the receipt URL signed — done *before* the attempt is
    /// claimed: with KMS down the message fails and comes back with no
    /// claim left behind to wait out.
    async fn prepare(
        &self,
        n: &Notification,
        attempt_id: &str,
        channel: Channel,
        provider: &str,
    ) -> Result<Prepared<'_>, Error> {
        let recipient = self.comms.open_recipient(n).await?;
        let mut messages = self.comms.open_messages(n).await?;
        let message = messages.remove(&channel).ok_or("no message for the channel")?;
        let adapter =
            self.providers.iter().find(|p| p.channel() == channel && p.name() == provider).ok_or("provider gone")?;
        let query = self.callback_query(n, attempt_id, adapter.as_ref()).await?;
        Ok(Prepared { recipient, message, adapter: adapter.as_ref(), query })
    }

    /// Calls the provider. For push, every token of the adapter's platform
    /// is tried (sent if any took it); dead tokens come back as a new sealed
    /// recipient without them.
    async fn send(
        &self,
        n: &Notification,
        attempt_id: &str,
        channel: Channel,
        prepared: Prepared<'_>,
    ) -> Result<(Outcome, Option<Cleaned>), Error> {
        let Prepared { recipient, message, adapter, query } = prepared;
        let provider = adapter.name();
        let to: Vec<String> = match channel {
            Channel::Sms => recipient.phone.iter().cloned().collect(),
            Channel::Email => recipient.email.iter().cloned().collect(),
            Channel::Push => recipient
                .push_tokens
                .iter()
                .filter(|t| Some(t.platform) == adapter.platform())
                .map(|t| t.token.clone())
                .collect(),
        };
        if to.is_empty() {
            return Ok((
                Outcome::Permanent { reason: format!("no {} address for {provider}", channel.as_str()) },
                None,
            ));
        }
        let mut outcomes = Vec::with_capacity(to.len());
        for address in &to {
            let outgoing = Outgoing {
                reference: attempt_id,
                to: address,
                subject: message.subject.as_deref(),
                body: &message.body,
                callback_query: query.as_deref(),
            };
            outcomes.push(adapter.send(&outgoing).await);
        }
        let dead: Vec<&String> =
            to.iter().zip(&outcomes).filter(|(_, o)| matches!(o, Outcome::DeadToken { .. })).map(|(t, _)| t).collect();
        let cleaned = if dead.is_empty() {
            None
        } else {
            let mut kept = recipient.clone();
            kept.push_tokens.retain(|t| !dead.contains(&&t.token));
            tracing::info!(notification_id = %n.notification_id, dropped = dead.len(), "dead push tokens dropped");
            // Remembered (by hash) so later notifications leave them out.
            let hashes: Vec<String> =
                recipient.push_tokens.iter().filter(|t| dead.contains(&&t.token)).map(token_hash).collect();
            if let Err(e) =
                self.comms.store.mark_dead_tokens(&n.clinic_id, &hashes, Utc::now(), chrono::Duration::days(90)).await
            {
                tracing::warn!(error = %e, "remembering dead push tokens failed");
            }
            let sealed = self.comms.seal_recipient(&n.clinic_id, &n.notification_id, &kept).await?;
            Some(Cleaned { sealed, push_tokens: kept.push_tokens.len() })
        };
        let outcome = if let Some(sent) = outcomes.iter().find(|o| matches!(o, Outcome::Sent { .. })) {
            sent.clone()
        } else if let Some(transient) = outcomes.iter().find(|o| matches!(o, Outcome::Transient { .. })) {
            transient.clone()
        } else if outcomes.iter().all(|o| matches!(o, Outcome::DeadToken { .. })) {
            Outcome::Permanent { reason: format!("{provider}: every push token is dead") }
        } else {
            outcomes
                .into_iter()
                .find(|o| matches!(o, Outcome::Permanent { .. }))
                .unwrap_or(Outcome::Permanent { reason: format!("{provider}: refused") })
        };
        Ok((outcome, cleaned))
    }

    /// Where a receipt for this attempt belongs, for the adapter's receipt
    /// URL: `ref=<clinic>~<notification>~<attempt>`, and for the gateway
    /// `sig`, the KMS MAC of `ref` (Twilio and Vonage sign their own).
    async fn callback_query(
        &self,
        n: &Notification,
        attempt_id: &str,
        adapter: &dyn Provider,
    ) -> Result<Option<String>, Error> {
        if !adapter.sends_receipts() {
            return Ok(None);
        }
        let reference = ReceiptRef {
            clinic_id: n.clinic_id.clone(),
            notification_id: n.notification_id.clone(),
            attempt_id: attempt_id.to_owned(),
        }
        .to_string();
        let sig = if adapter.name() == "gateway" {
            let mac = self.receipt_mac.as_ref().ok_or("DLR_SIGNING_KEY_ID is not set")?;
            Some(mac.sign(&reference).await?)
        } else {
            None
        };
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("ref", &reference);
        if let Some(sig) = &sig {
            query.append_pair("sig", sig);
        }
        Ok(Some(query.finish()))
    }

    /// Writes an attempt's outcome (and the `sent` event) on the attempt it
    /// claimed; `retry_at`, when a transient failure is to be retried later.
    async fn record(
        &self,
        known: (Notification, u64),
        attempt_id: &str,
        outcome: Outcome,
        cleaned: Option<Cleaned>,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Notification, Error> {
        let receipts = known
            .0
            .attempts
            .iter()
            .find(|a| a.attempt_id == attempt_id)
            .and_then(|a| self.providers.iter().find(|p| p.channel() == a.channel && p.name() == a.provider))
            .is_some_and(|p| p.sends_receipts());
        let result = self
            .comms
            .store
            .update_from(known, |current| {
                let mut next = current.clone();
                let attempt =
                    next.attempts.iter_mut().find(|a| a.attempt_id == attempt_id && a.status == Status::Sending)?;
                let mut events = Vec::new();
                match &outcome {
                    Outcome::Sent { provider_message_id } => {
                        attempt.status = Status::Sent;
                        attempt.provider_message_id = Some(provider_message_id.clone());
                        let (channel, provider) = (attempt.channel, attempt.provider.clone());
                        // A receipt may have come first (the provider's race): it stays.
                        let delivery =
                            next.delivery.entry(attempt_id.to_owned()).or_insert(Delivery::new(Status::Sending, now));
                        if Delivery::advances_to(Some(delivery), Status::Sent) {
                            *delivery =
                                Delivery { provider: Some(provider.clone()), ..Delivery::new(Status::Sent, now) };
                        }
                        if receipts && !delivery.status.is_terminal() {
                            next.awaiting_receipt_since = Some(now);
                        }
                        if next.status.may_become(Status::Sent) {
                            next.status = Status::Sent;
                            next.channel = Some(channel);
                            next.provider = Some(provider);
                            events.push(DomainEvent::new(
                                NOTIFICATION_SENT,
                                &next.clinic_id,
                                &next.notification_id,
                                now,
                                next.summary(),
                            ));
                        }
                    }
                    Outcome::Transient { reason, .. }
                    | Outcome::Permanent { reason }
                    | Outcome::DeadToken { reason } => {
                        attempt.status = Status::Failed;
                        attempt.error = Some(reason.clone());
                        attempt.permanent = !matches!(outcome, Outcome::Transient { .. });
                    }
                }
                if let Some(c) = &cleaned {
                    next.sealed_recipient = c.sealed.clone();
                    next.recipient.push_tokens = c.push_tokens;
                }
                next.reconcile_at = if next.status.rank() >= Status::Sent.rank() {
                    None
                } else {
                    // Retried after its backoff, or at once (the next route).
                    Some(lifecycle::reconcile_at(retry_at.unwrap_or(now)))
                };
                next.updated_at = now;
                Some((next, events))
            })
            .await?;
        Ok(result.0)
    }

    /// Every route is exhausted: `failed`, with the reasons in the attempts.
    async fn fail(&self, known: (Notification, u64), now: DateTime<Utc>) -> Result<(), Error> {
        let id = known.0.notification_id.clone();
        self.comms
            .store
            .update_from(known, |current| {
                if !current.status.may_become(Status::Failed) {
                    return None;
                }
                let mut next = current.clone();
                next.status = Status::Failed;
                next.reconcile_at = None;
                next.updated_at = now;
                let event =
                    DomainEvent::new(NOTIFICATION_FAILED, &next.clinic_id, &next.notification_id, now, next.summary());
                Some((next, vec![event]))
            })
            .await?;
        tracing::warn!(notification_id = %id, "notification failed on every route");
        Ok(())
    }
}
