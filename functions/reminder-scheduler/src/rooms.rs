//! The rooms' entries in the due index: retrying a meeting's end that its
//! provider refused (`end-retry`), and settling an OpenVidu room whose
//! `room_finished` webhook never came (`room-check`, at its window's close).

use chrono::{DateTime, Duration, Utc};
use vcare_care::video::{Ended, Occupancy};
use vcare_domain::due::{Due, Verdict};
use vcare_domain::room::SessionEvent;
use vcare_runtime::{Error, metrics};

use vcare_comms::DueDone;

use crate::{Done, Scheduler};

/// How long a room check waits for participants still connected after
/// the window closed, and for how long at most.
const RECHECK: Duration = Duration::minutes(10);
const RECHECK_FOR: Duration = Duration::hours(8);

impl Scheduler {
    pub(crate) async fn end_retry(&self, due: &Due, verdict: Verdict, now: DateTime<Utc>) -> Result<Done, Error> {
        if verdict == Verdict::Wait {
            return Ok(Done::Due(DueDone::Later));
        }
        let care = &self.tokens.care;
        let Some((room, _)) = care.store.get(&due.clinic, &due.id).await? else {
            care.due().remove(due).await?;
            return Ok(Done::Due(DueDone::Later));
        };
        let ended = self.tokens.providers.end_meeting(&care.store, &room, now, Some(due)).await?;
        metrics::count("ProviderEndRetries", &[("provider", room.provider.as_str()), ("ended", bool_str(ended))]);
        Ok(Done::Rooms(usize::from(ended == Ended::Ended)))
    }

    pub(crate) async fn room_check(&self, due: &Due, verdict: Verdict, now: DateTime<Utc>) -> Result<Done, Error> {
        if verdict == Verdict::Wait {
            return Ok(Done::Due(DueDone::Later));
        }
        let care = &self.tokens.care;
        let index = care.due();
        let Some((room, _)) = care.store.get(&due.clinic, &due.id).await? else {
            index.remove(due).await?;
            return Ok(Done::Due(DueDone::Later));
        };
        let provider = self.tokens.providers.of(&room)?;
        if !room.status.is_open() {
            // Ended or cancelled in vcare: make sure the provider's room is gone too.
            if room.prepared {
                self.tokens.providers.end_meeting(&care.store, &room, now, None).await?;
            }
            index.remove(due).await?;
            return Ok(Done::Due(DueDone::Later));
        }
        match provider.occupancy(&room).await.map_err(Error::from)? {
            Occupancy::Present(n) if n > 0 && now - due.at < RECHECK_FOR => {
                let later = Due { at: now + RECHECK, ..due.clone() };
                index.add(&later).await?;
                index.remove(due).await?;
                Ok(Done::Due(DueDone::Later))
            }
            Occupancy::Unknown => {
                index.remove(due).await?;
                Ok(Done::Due(DueDone::Later))
            }
            _ => {
                // Nobody there (or the provider's room is gone): the end
                // was lost. End it by the same session rules, then make
                // sure the provider's room is deleted.
                let settled = care.apply_session(&room, SessionEvent::RoomDestroyed(now)).await?;
                if settled.is_some() {
                    tracing::info!(room_id = %room.room_id, "a room whose end never came was settled");
                    metrics::count("RoomsSettled", &[("provider", room.provider.as_str())]);
                }
                if room.prepared {
                    self.tokens.providers.end_meeting(&care.store, &room, now, None).await?;
                }
                index.remove(due).await?;
                Ok(Done::Rooms(usize::from(settled.is_some())))
            }
        }
    }
}

fn bool_str(ended: Ended) -> &'static str {
    if ended == Ended::Ended { "true" } else { "false" }
}
