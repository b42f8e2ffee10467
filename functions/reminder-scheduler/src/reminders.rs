//! An appointment reminder: each participant with a contact gets one, in
//! their language, with a join link (a short `/j/<code>` link, or a join
//! token as `token-issue` signs it, issued at the reminder's due minute).
//! Reminders an hour or less ahead are `high` priority (quiet hours do not
//! hold them).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use vcare_comms::{Notice, Submitted};
use vcare_domain::appointment::local_when;
use vcare_domain::clinic::ReminderWindows;
use vcare_domain::consent::ReplyAction;
use vcare_domain::notification::{Context, Priority};
use vcare_domain::room::RoomStatus;
use vcare_domain::room_records::LinkMaker;
use vcare_runtime::Error;

use vcare_care::tokens::Minter;

use crate::Scheduler;

/// The actor of a token a reminder carries.
const REMINDERS: &str = "vcare-reminders";

/// A reminder's idempotency key, and its token's request id.
fn key_for(room_id: &str, user_id: &str, label: &str) -> String {
    format!("reminder:{room_id}:{user_id}:{label}")
}

impl Scheduler {
    /// Sends the reminder `window` ahead of room `room_id`, due at `at`;
    /// none if the room is no longer scheduled then.
    pub(crate) async fn remind(
        &self,
        clinic: &str,
        room_id: &str,
        window: Duration,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<usize, Error> {
        let store = &self.tokens.care.store;
        let Some((room, _)) = store.get(clinic, room_id).await? else { return Ok(0) };
        if room.status != RoomStatus::Scheduled || room.scheduled_start - window != at {
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
                Some(links) => {
                    let link = links.link_for(&self.tokens, &room, &p.user_id, LinkMaker::Service, REMINDERS).await?;
                    Some(links.url(&link))
                }
                // Without links, a token now — none where it would pass a
                // waiting room nothing stands behind (OpenVidu), or where the
                // provider has no join page: the reminder then has no link.
                None => {
                    let by = Minter {
                        actor_id: REMINDERS.into(),
                        actor_roles: vec!["system".into()],
                        action: "token.issue.reminder",
                        request_id: key_for(room_id, &p.user_id, &label),
                        source_ip: String::new(),
                        granted_by: None,
                    };
                    // A token not recorded is not sent: the run fails, and the next one retries.
                    self.tokens.join_url(&room, p, room.scheduled_start - window, &self.audit, by).await?
                }
            };
            let mut variables =
                BTreeMap::from([("when".to_owned(), local_when(room.scheduled_start, recipient.timezone.as_deref()))]);
            variables.extend(join_url.map(|u| ("joinUrl".to_owned(), u)));
            let key = key_for(room_id, &p.user_id, &label);
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
