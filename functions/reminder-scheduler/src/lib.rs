//! `reminder-scheduler`, every minute: everything the due index holds for
//! now — schedule occurrences, notifications whose far `sendAt` has come
//! near, and appointment reminders (written with the room, one per window).
//!
//! A run reads the index up to the end of its minute (each of its shards,
//! a query per page: work proportional to what is due, never to how many
//! schedules exist), and does each entry:
//! - within `SCHEDULE_CATCH_UP_MINUTES` (60) late: fired, each as a
//!   notification through the normal accept path under a key of its own
//!   (`schedule:<id>:<instant>`, `reminder:<room>:<user>:<window>`), so
//!   overlapping runs, retries and catch-ups never send twice;
//! - older: skipped (a schedule moves on to its next occurrence), each
//!   skipped occurrence counted in the `ScheduleOccurrencesSkipped` metric;
//! - a waiting notification is queued however late (it was accepted);
//! - the rooms' entries (`rooms`) and the recordings' (`recordings`:
//!   retention, and egresses whose webhook never came) are done however late.
//!
//! Entries an occurrence made due again (a catch-up of several) are taken
//! in the same run, up to [`MAX_PASSES`] reads.

mod recordings;
mod reminders;
mod rooms;

use std::collections::HashSet;
use std::sync::Arc;

use aws_lambda_events::cloudwatch_events::CloudWatchEvent;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;
use vcare_aws::SdkConfig;
use vcare_care::audit::Audit;
use vcare_care::links::Links;
use vcare_care::recordings::{RecordingStorage, Recordings};
use vcare_care::tokens::TokenIssuer;
use vcare_care::video::Needs;
use vcare_comms::{DueDone, Notifications};
use vcare_domain::due::{DueKind, Verdict, judge};
use vcare_runtime::{Env, Error, EventFunction, LambdaEvent, metrics};

/// Entries one read takes at most.
pub const DUE_BATCH: usize = 2_000;
/// Reads of the index one run makes at most.
pub const MAX_PASSES: usize = 5;
/// Entries done at once.
pub const CONCURRENCY: usize = 16;

/// What one entry came to.
enum Done {
    Due(DueDone),
    /// Appointment reminders accepted (one per participant reached).
    Reminders(usize),
    /// Rooms ended at their provider or settled.
    Rooms(usize),
    /// Recordings deleted by retention, or settled without their webhook.
    Recordings(usize),
}

pub struct Scheduler {
    tokens: TokenIssuer,
    /// Short join links (`JOIN_LINK_BASE_URL` set): reminders carry
    /// `/j/<code>`, not a token; without it, the token's URL.
    links: Option<Links>,
    /// Where a reminder's token is recorded (without links: it carries one).
    audit: Audit,
    comms: Notifications,
    /// The recordings' sweeps (`RECORDING_BUCKET` set).
    recordings: Option<(Recordings, RecordingStorage)>,
    catch_up: Duration,
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// Due entries read, and the read requests that took.
    pub entries: usize,
    pub reads: usize,
    /// Schedule occurrences that became notifications (now or by an overlapping run).
    pub fired: usize,
    /// Appointment reminders accepted now or before.
    pub reminders: usize,
    /// Waiting notifications queued.
    pub released: usize,
    /// Occurrences and reminders too late to send, and occurrences refused at accept.
    pub skipped: u64,
    pub refused: usize,
    /// Meetings ended on a retry, and rooms settled whose end never came.
    pub rooms: usize,
    /// Recordings deleted by retention, and egresses settled by the sweep.
    pub recordings: usize,
}

impl Run {
    fn add(&mut self, done: Done) {
        match done {
            Done::Reminders(n) => self.reminders += n,
            Done::Rooms(n) => self.rooms += n,
            Done::Recordings(n) => self.recordings += n,
            Done::Due(DueDone::Fired) => self.fired += 1,
            Done::Due(DueDone::Released) => self.released += 1,
            Done::Due(DueDone::Skipped(n)) => self.skipped += n,
            Done::Due(DueDone::Refused) => self.refused += 1,
            Done::Due(DueDone::Stale | DueDone::Later) => {}
        }
    }
}

pub async fn scheduler(env: &Env, sdk: &SdkConfig) -> Result<Arc<Scheduler>, Error> {
    let tokens = TokenIssuer::with(env, sdk, Needs { tokens: true, end: true }).await?;
    Ok(Arc::new(Scheduler {
        comms: Notifications::from_env(env, sdk)?,
        links: env.get("JOIN_LINK_BASE_URL").is_some().then(|| Links::from_env(env, sdk)).transpose()?,
        audit: Audit::from_env(env, sdk)?,
        recordings: env.get("RECORDING_BUCKET").is_some().then(|| Recordings::with_storage(env, sdk)).transpose()?,
        tokens,
        catch_up: Duration::minutes(env.bounded("SCHEDULE_CATCH_UP_MINUTES", 60, 1, 24 * 60)?),
    }))
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<impl vcare_runtime::Function + use<>, Error> {
    let s = scheduler(env, sdk).await?;
    Ok(EventFunction::new(move |_: LambdaEvent<CloudWatchEvent>| {
        let s = s.clone();
        async move { s.run(Utc::now()).await }
    }))
}

impl Scheduler {
    /// Everything due up to the end of `now`'s minute, [`CONCURRENCY`]
    /// entries at a time. An entry that fails is left for the next run
    /// (its work is idempotent); the others go on, and the run then fails.
    pub async fn run(self: &Arc<Self>, now: DateTime<Utc>) -> Result<Run, Error> {
        let until = now.duration_trunc(Duration::minutes(1))? + Duration::minutes(1);
        let mut run = Run::default();
        let mut seen = HashSet::new();
        let mut failed: Option<Error> = None;
        for _ in 0..MAX_PASSES {
            let (entries, reads) = self.comms.schedules.due().due_before(until, DUE_BATCH).await?;
            run.reads += reads;
            let fresh: Vec<_> = entries.into_iter().filter(|d| seen.insert((d.at, d.kind, d.id.clone()))).collect();
            if fresh.is_empty() {
                break;
            }
            run.entries += fresh.len();
            let mut tasks = tokio::task::JoinSet::new();
            let mut done = Vec::new();
            for due in fresh {
                if tasks.len() >= CONCURRENCY {
                    done.extend(tasks.join_next().await);
                }
                let me = self.clone();
                tasks.spawn(async move { me.entry(&due, now).await });
            }
            while let Some(d) = tasks.join_next().await {
                done.push(d);
            }
            for d in done {
                match d.map_err(|e| Error::from(e.to_string())).and_then(|r| r) {
                    Ok(d) => run.add(d),
                    Err(e) => failed = failed.or(Some(e)),
                }
            }
        }
        if run.fired + run.released + run.reminders > 0 {
            tracing::info!(fired = run.fired, released = run.released, reminders = run.reminders, "due entries done");
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(run),
        }
    }

    /// One entry, counted.
    async fn entry(&self, due: &vcare_domain::due::Due, now: DateTime<Utc>) -> Result<Done, Error> {
        let verdict = judge(due, now, self.catch_up);
        match due.kind {
            DueKind::Reminder => return self.reminder(due, verdict, now).await,
            DueKind::EndRetry => return self.end_retry(due, verdict, now).await,
            DueKind::RoomCheck => return self.room_check(due, verdict, now).await,
            DueKind::RecordingExpiry | DueKind::EgressCheck => return self.recording(due, verdict, now).await,
            DueKind::Occurrence | DueKind::Release => {}
        }
        Ok(match self.comms.run_due(due, verdict, self.catch_up, now).await? {
            DueDone::Skipped(n) => {
                metrics::count_n("ScheduleOccurrencesSkipped", n, &[]);
                Done::Due(DueDone::Skipped(n))
            }
            DueDone::Refused => {
                metrics::count("ScheduleOccurrencesRefused", &[]);
                Done::Due(DueDone::Refused)
            }
            other => Done::Due(other),
        })
    }

    /// An appointment reminder's entry: sent if on time and the room still
    /// starts when it did, then removed.
    async fn reminder(
        &self,
        due: &vcare_domain::due::Due,
        verdict: Verdict,
        now: DateTime<Utc>,
    ) -> Result<Done, Error> {
        let sent = match verdict {
            Verdict::Wait => return Ok(Done::Due(DueDone::Later)),
            Verdict::Skip => {
                metrics::count("ScheduleOccurrencesSkipped", &[("kind", "reminder")]);
                self.comms.schedules.due().remove(due).await?;
                return Ok(Done::Due(DueDone::Skipped(1)));
            }
            Verdict::Fire => match vcare_domain::appointment::reminder_of(&due.id) {
                Some((room_id, window)) => self.remind(&due.clinic, room_id, window, due.at, now).await?,
                None => 0,
            },
        };
        self.comms.schedules.due().remove(due).await?;
        Ok(Done::Reminders(sent))
    }
}
