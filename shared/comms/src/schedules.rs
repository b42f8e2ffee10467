//! Schedules as use cases: create (Idempotency-Key), read, pause, resume,
//! delete; and what the scheduler does with a due entry: fire an
//! occurrence through the normal accept path (one notification per
//! occurrence, key `schedule:<id>:<instant>`), or release a notification
//! whose `sendAt` has come near.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use vcare_crypto::context;
use vcare_domain::Rejected;
use vcare_domain::due::{Due, RELEASE_AHEAD_SECONDS, Verdict};
use vcare_domain::ids;
use vcare_domain::schedule::{
    CREATED_OCCURRENCES, Firing, Passed, SHOWN_OCCURRENCES, Schedule, ScheduleRequest, ScheduleStatus,
};
use vcare_domain::templates;
use vcare_store::ScheduleCreated;

use crate::{BackendError, Notifications, NotifyError, Submitted, sha256_hex, timezone_ok};

/// What creating a schedule came to.
#[derive(Debug)]
pub enum ScheduleCreate {
    Created(Box<Schedule>),
    Conflict,
    InProgress,
}

/// What the scheduler did with one due entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueDone {
    /// An occurrence became a notification (now or by an overlapping run).
    Fired,
    /// Occurrences too late to send were passed over (how many).
    Skipped(u64),
    /// The occurrence could not become a notification (its template no
    /// longer takes its variables): passed over, counted.
    Refused,
    /// A waiting notification was queued.
    Released,
    /// The entry was no longer wanted (schedule paused, deleted, moved on).
    Stale,
    /// Not yet (being written elsewhere, or not due): left for the next run.
    Later,
}

/// How many skipped occurrences a late run counts at most.
const MAX_COUNTED_SKIPS: usize = 10_000;

impl Notifications {
    async fn seal_firing(&self, clinic: &str, id: &str, f: &Firing) -> Result<String, BackendError> {
        let json = serde_json::to_vec(f).map_err(|_| BackendError::Malformed)?;
        Ok(self.envelope.seal(&json, &context(clinic, id, "schedule")).await?)
    }

    async fn open_firing(&self, s: &Schedule) -> Result<Firing, BackendError> {
        let plain = self.envelope.open(&s.sealed_firing, &context(&s.clinic_id, &s.schedule_id, "schedule")).await?;
        serde_json::from_slice(&plain).map_err(|_| BackendError::Malformed)
    }

    /// Checks `body` as a notification would be checked at every firing
    /// (recipient, channels, the template and its variables), then keeps it
    /// with its first due entry under `key`.
    pub async fn create_schedule(
        &self,
        clinic: &str,
        key: &str,
        body: ScheduleRequest,
        now: DateTime<Utc>,
    ) -> Result<ScheduleCreate, NotifyError> {
        let new = body.parse(now)?;
        let checked = new.firing.request().validate_as(now, timezone_ok, &self.config.push_endpoints, false)?;
        if !checked.channels.iter().any(|c| self.config.routable.contains(c)) {
            return Err(Rejected::Impossible("channels: no provider is configured for them".into()).into());
        }
        let template = self.resolve_template(clinic, &new.firing.template, None).await?;
        let mut variables = new.firing.variables.clone();
        variables.insert("clinic".to_owned(), self.config.clinic_name(clinic).to_owned());
        for channel in &checked.channels {
            templates::render(&template, checked.recipient.locale.as_deref(), *channel, &variables)?;
        }
        let id = ids::prefixed("sch");
        let r = &new.recurrence;
        let request_hash = sha256_hex(
            json!({"firing": new.firing, "rrule": r.rule, "tz": r.timezone.name(), "start": r.start, "until": r.until})
                .to_string()
                .as_bytes(),
        );
        let schedule = Schedule {
            schedule_id: id.clone(),
            clinic_id: clinic.to_owned(),
            user_id: new.firing.recipient.user_id.clone(),
            status: ScheduleStatus::Active,
            rrule: r.rule.clone(),
            timezone: r.timezone.name().to_owned(),
            start: r.start,
            until: r.until,
            template: new.firing.template.clone(),
            category: new.firing.category.clone().unwrap_or_else(|| template.category.clone()),
            priority: new.firing.priority,
            channels: checked.channels.clone(),
            next_at: r.first_from(now.max(r.start)),
            fired_count: 0,
            skipped_count: 0,
            last_fired_at: None,
            created_at: now,
            updated_at: now,
            sealed_firing: self.seal_firing(clinic, &id, &new.firing).await?,
        };
        let key_hash = sha256_hex(key.as_bytes());
        match self.schedules.create(&schedule, &key_hash, &request_hash, now, self.config.idempotency).await? {
            ScheduleCreated::New => Ok(ScheduleCreate::Created(Box::new(schedule))),
            ScheduleCreated::Existing { schedule_id, same_request: true } => {
                match self.schedules.get(clinic, &schedule_id).await? {
                    Some((s, _)) => Ok(ScheduleCreate::Created(Box::new(s))),
                    None => Ok(ScheduleCreate::InProgress),
                }
            }
            ScheduleCreated::Existing { same_request: false, .. } => Ok(ScheduleCreate::Conflict),
            ScheduleCreated::InProgress => Ok(ScheduleCreate::InProgress),
        }
    }

    /// What a read shows: the schedule (nothing sealed) and its next `n` occurrences.
    pub fn schedule_view(&self, s: &Schedule, n: usize) -> Value {
        let next: Vec<DateTime<Utc>> = match (s.status, s.next_at, s.recurrence()) {
            (ScheduleStatus::Active, Some(at), Ok(r)) => {
                let mut v = vec![at];
                v.extend(r.after(at, n.saturating_sub(1)));
                v
            }
            _ => Vec::new(),
        };
        json!({
            "scheduleId": s.schedule_id, "status": s.status, "rrule": s.rrule, "timezone": s.timezone,
            "start": s.start, "until": s.until, "template": s.template, "category": s.category,
            "priority": s.priority, "channels": s.channels, "userId": s.user_id,
            "nextOccurrences": next, "firedCount": s.fired_count, "skippedCount": s.skipped_count,
            "lastFiredAt": s.last_fired_at, "createdAt": s.created_at, "updatedAt": s.updated_at,
        })
    }

    pub fn created_view(&self, s: &Schedule) -> Value {
        self.schedule_view(s, CREATED_OCCURRENCES)
    }

    pub async fn schedule(&self, clinic: &str, id: &str) -> Result<Option<Value>, NotifyError> {
        Ok(self.schedules.get(clinic, id).await?.map(|(s, _)| self.schedule_view(&s, SHOWN_OCCURRENCES)))
    }

    pub async fn schedules_of(&self, clinic: &str, user: &str) -> Result<Vec<Value>, NotifyError> {
        let all = self.schedules.of_user(clinic, user).await?;
        Ok(all.iter().map(|s| self.schedule_view(s, CREATED_OCCURRENCES)).collect())
    }

    /// Pauses or resumes; `None` if there is no such schedule. Resuming
    /// starts from the first occurrence after now (missed ones are not replayed).
    pub async fn set_schedule_status(
        &self,
        clinic: &str,
        id: &str,
        status: ScheduleStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Value>, NotifyError> {
        let Some(known) = self.schedules.get(clinic, id).await? else { return Ok(None) };
        let next = known.0.recurrence()?.next_after(now);
        let (s, _) = match status {
            ScheduleStatus::Paused => self.schedules.update(known, |s| s.paused(now)).await?,
            ScheduleStatus::Active => self.schedules.update(known, |s| s.resumed(next, now)).await?,
            ScheduleStatus::Ended => return Err(Rejected::Invalid("status: paused or active".into()).into()),
        };
        Ok(Some(self.schedule_view(&s, SHOWN_OCCURRENCES)))
    }

    pub async fn delete_schedule(&self, clinic: &str, id: &str) -> Result<bool, NotifyError> {
        Ok(self.schedules.delete(clinic, id).await?)
    }

    /// Does what a due entry of a schedule or a waiting notification asks.
    pub async fn run_due(
        &self,
        due: &Due,
        verdict: Verdict,
        catch_up: Duration,
        now: DateTime<Utc>,
    ) -> Result<DueDone, NotifyError> {
        use vcare_domain::due::DueKind;
        match (due.kind, verdict) {
            // Reminders, the rooms' and the recordings' entries are the scheduler's own.
            (_, Verdict::Wait)
            | (
                DueKind::Reminder
                | DueKind::EndRetry
                | DueKind::RoomCheck
                | DueKind::RecordingExpiry
                | DueKind::EgressCheck,
                _,
            ) => Ok(DueDone::Later),
            (DueKind::Release, _) => {
                let send_at = due.at + Duration::seconds(RELEASE_AHEAD_SECONDS);
                self.enqueue(&due.clinic, &due.id, (send_at - now).num_seconds()).await?;
                self.schedules.due().remove(due).await?;
                Ok(DueDone::Released)
            }
            (DueKind::Occurrence, verdict) => self.occurrence(due, verdict == Verdict::Fire, catch_up, now).await,
        }
    }

    async fn occurrence(
        &self,
        due: &Due,
        fire: bool,
        catch_up: Duration,
        now: DateTime<Utc>,
    ) -> Result<DueDone, NotifyError> {
        let Some(known) = self.schedules.get(&due.clinic, &due.id).await? else {
            self.schedules.due().remove(due).await?;
            return Ok(DueDone::Stale);
        };
        let s = &known.0;
        if s.status != ScheduleStatus::Active || s.next_at != Some(due.at) {
            self.schedules.due().remove(due).await?;
            return Ok(DueDone::Stale);
        }
        let recurrence = s.recurrence()?;
        if !fire {
            // Too late: pass over everything older than the catch-up window.
            let oldest = now - catch_up;
            let missed = recurrence.after(due.at - Duration::milliseconds(1), MAX_COUNTED_SKIPS);
            let skipped = missed.iter().filter(|t| **t < oldest).count().max(1) as u64;
            let next = recurrence.first_from(oldest);
            self.schedules.update(known, |s| s.advanced(due.at, next, Passed::Skipped(skipped), now)).await?;
            return Ok(DueDone::Skipped(skipped));
        }
        let firing = self.open_firing(s).await?;
        let outcome = self.submit(&due.clinic, &s.occurrence_key(due.at), firing.request(), now).await;
        let done = match outcome {
            Ok(Submitted::Accepted(_)) | Ok(Submitted::Conflict) => DueDone::Fired,
            Ok(Submitted::InProgress) => return Ok(DueDone::Later),
            Err(NotifyError::Rejected(why)) => {
                tracing::warn!(schedule_id = %s.schedule_id, reason = %why, "an occurrence could not be sent; passed over");
                DueDone::Refused
            }
            Err(e) => return Err(e),
        };
        let next = recurrence.next_after(due.at);
        let passed = if done == DueDone::Fired { Passed::Fired } else { Passed::Skipped(1) };
        self.schedules.update(known, |s| s.advanced(due.at, next, passed, now)).await?;
        Ok(done)
    }
}
