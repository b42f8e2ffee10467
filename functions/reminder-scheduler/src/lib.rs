//! `reminder-scheduler`, every minute: appointment reminders, exactly once.
//!
//! For each minute since the last run (a checkpoint; at most
//! `REMINDER_CATCH_UP_MINUTES`, 60, back, so a missed minute is caught up)
//! and each reminder window (`REMINDER_WINDOWS`, default `24h,1h,10m`;
//! a clinic may have its own in `CLINIC_REMINDER_WINDOWS`), the rooms that
//! start that far ahead are found in the rooms' start-minute index (no
//! scans). Each participant with a contact gets one reminder per window,
//! in their language, with a join link (a join token as `token-issue`
//! signs it, issued at the reminder's due minute), under the key `reminder:<room>:<user>:<window>`:
//! overlapping runs, retries and catch-ups never send twice. Reminders an
//! hour or less ahead are `high` priority (quiet hours do not hold them).

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::cloudwatch_events::CloudWatchEvent;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;
use vcare_aws::SdkConfig;
use vcare_care::links::Links;
use vcare_care::tokens::TokenIssuer;
use vcare_comms::{Notice, Notifications, Submitted};
use vcare_domain::appointment::local_when;
use vcare_domain::clinic::{PerClinic, ReminderWindows};
use vcare_domain::consent::ReplyAction;
use vcare_domain::notification::{Context, Priority};
use vcare_domain::room::RoomStatus;
use vcare_runtime::{ConfigError, Env, Error, EventFunction, LambdaEvent};
use vcare_store::Checkpoints;

pub const CHECKPOINT: &str = "reminders";

pub struct Reminders {
    tokens: TokenIssuer,
    /// Short join links (`JOIN_LINK_BASE_URL` set): reminders carry
    /// `/j/<code>`, not a token; without it, the token's URL.
    links: Option<Links>,
    comms: Notifications,
    checkpoints: Checkpoints,
    windows: PerClinic<ReminderWindows>,
    catch_up: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub minutes: usize,
    /// Reminders accepted now or before (an overlapping run's are counted too).
    pub reminders: usize,
}

pub async fn reminders(env: &Env, sdk: &SdkConfig) -> Result<Reminders, Error> {
    let invalid = |name: &str| {
        let name = name.to_owned();
        move |reason: String| ConfigError::Invalid { name, reason }
    };
    let default: ReminderWindows =
        env.get("REMINDER_WINDOWS").unwrap_or("24h,1h,10m").parse().map_err(invalid("REMINDER_WINDOWS"))?;
    let windows = PerClinic::parse(default, env.get("CLINIC_REMINDER_WINDOWS").unwrap_or(""))
        .map_err(invalid("CLINIC_REMINDER_WINDOWS"))?;
    let tokens = TokenIssuer::from_env(env, sdk).await?;
    let table = tokens.care.config.table_name.clone();
    Ok(Reminders {
        comms: Notifications::from_env(env, sdk)?,
        checkpoints: Checkpoints::new(tokens.care.store.client().clone(), table),
        links: env.get("JOIN_LINK_BASE_URL").is_some().then(|| Links::from_env(env, sdk)).transpose()?,
        tokens,
        windows,
        catch_up: env.bounded("REMINDER_CATCH_UP_MINUTES", 60, 1, 24 * 60)?,
    })
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<impl vcare_runtime::Function + use<>, Error> {
    let r = Arc::new(reminders(env, sdk).await?);
    Ok(EventFunction::new(move |_: LambdaEvent<CloudWatchEvent>| {
        let r = r.clone();
        async move { r.run(Utc::now()).await }
    }))
}

impl Reminders {
    /// Every minute from the checkpoint up to `now`'s, then the checkpoint.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<Run, Error> {
        let current = now.duration_trunc(Duration::minutes(1))?;
        let oldest = current - Duration::minutes(self.catch_up - 1);
        let from = match self.checkpoints.get(CHECKPOINT).await? {
            Some(last) => (last + Duration::minutes(1)).max(oldest),
            None => current,
        };
        let mut run = Run::default();
        let mut minute = from;
        while minute <= current {
            run.reminders += self.minute(minute, now).await?;
            run.minutes += 1;
            minute += Duration::minutes(1);
        }
        self.checkpoints.advance(CHECKPOINT, current).await?;
        Ok(run)
    }

    /// The reminders due in `minute`: rooms starting one window later.
    async fn minute(&self, minute: DateTime<Utc>, now: DateTime<Utc>) -> Result<usize, Error> {
        let mut all: Vec<Duration> = self.windows.default.0.clone();
        all.extend(self.windows.clinics.values().flat_map(|w| w.0.iter().copied()));
        all.sort();
        all.dedup();
        let mut sent = 0;
        for window in all {
            for (clinic, room_id) in self.tokens.care.store.starting_in(minute + window).await? {
                if !self.windows.of(&clinic).0.contains(&window) {
                    continue;
                }
                sent += self.remind(&clinic, &room_id, window, now).await?;
            }
        }
        Ok(sent)
    }

    async fn remind(&self, clinic: &str, room_id: &str, window: Duration, now: DateTime<Utc>) -> Result<usize, Error> {
        let store = &self.tokens.care.store;
        let Some((room, _)) = store.get(clinic, room_id).await? else { return Ok(0) };
        if room.status != RoomStatus::Scheduled {
            return Ok(0);
        }
        let label = ReminderWindows::label(window);
        let priority = if window <= Duration::hours(1) { Priority::High } else { Priority::Normal };
        let mut sent = 0;
        for p in &room.participants {
            let Some(contact) = store.contact(&room, &p.user_id).await? else { continue };
            let recipient = self.comms.open_contact(clinic, room_id, &p.user_id, &contact.sealed_contact).await?;
            // The same run again makes the same link (or token, issued "at" the
            // reminder's due minute), the same request, so a retry re-queues a
            // reminder whose first enqueue failed instead of conflicting with it.
            let join_url = match &self.links {
                Some(links) => links.url(&links.link_for(&self.tokens, &room, &p.user_id).await?),
                None => self.tokens.issue(&room, p, room.scheduled_start - window).await?.join_url,
            };
            let variables = BTreeMap::from([
                ("when".to_owned(), local_when(room.scheduled_start, recipient.timezone.as_deref())),
                ("joinUrl".to_owned(), join_url),
            ]);
            let key = format!("reminder:{room_id}:{}:{label}", p.user_id);
            // A reply C, R or X is about this appointment and room.
            let notice = Notice {
                template: "appointment-reminder",
                variables,
                priority,
                context: Some(Context {
                    appointment_id: Some(room.appointment_id.clone()),
                    room_id: Some(room.room_id.clone()),
                }),
                replies: vec![ReplyAction::Confirm, ReplyAction::Reschedule, ReplyAction::Cancel],
            };
            match self.comms.notify(clinic, &key, recipient, notice, now).await {
                Ok(Some(Submitted::Accepted(_))) => sent += 1,
                Ok(Some(Submitted::Conflict)) => {
                    // The room changed since (another time): the first reminder stands.
                    tracing::warn!(room_id, window = %label, "a reminder with other content exists; not sent again");
                }
                Ok(Some(Submitted::InProgress)) => {
                    tracing::info!(room_id, window = %label, "a reminder is being written by an overlapping run");
                }
                Ok(None) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(sent)
    }
}
