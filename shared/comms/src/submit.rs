//! Accepting a notification request under an idempotency key: what
//! `notification-create` does over HTTP, and what vcare's own senders
//! (cancellation notices, reminders) do with deterministic keys.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use vcare_domain::Rejected;
use vcare_domain::due::{self, Due, DueKind};
use vcare_domain::events::{DomainEvent, NOTIFICATION_ACCEPTED};
use vcare_domain::ids;
use vcare_domain::lifecycle;
use vcare_domain::notification::{
    Channel, MaskedRecipient, Message, NewNotification, Notification, NotificationRequest, Status, token_hash,
};
use vcare_domain::templates::{self, Rendered, Template};
use vcare_store::Accepted;

use crate::{Notifications, NotifyError, timezone_ok};

/// What a submission came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Accepted now, or the same request under the same key before: the id.
    Accepted(String),
    /// The key was used with another request.
    Conflict,
    /// A request with the key is being written right now.
    InProgress,
}

pub use vcare_domain::digest::sha256_hex;

/// The text each channel will carry (templates rendered strictly: a
/// missing variable is a rejection now, not a failed send later).
fn render(n: &NewNotification, template: Option<&Template>) -> Result<BTreeMap<Channel, Rendered>, Rejected> {
    let mut out = BTreeMap::new();
    for channel in &n.channels {
        let rendered = match (&n.message, template) {
            (Message::Template { variables, .. }, Some(t)) => {
                templates::render(t, n.recipient.locale.as_deref(), *channel, variables)?
            }
            (Message::Content(c), _) => Rendered { subject: c.subject.clone(), body: c.body.clone(), html: None },
            (Message::Template { name, .. }, None) => {
                return Err(Rejected::Impossible(format!("template: no template named {name}")));
            }
        };
        out.insert(*channel, rendered);
    }
    Ok(out)
}

impl Notifications {
    /// Validates, renders, seals and accepts `body` for `clinic` under
    /// `key` (notification, idempotency record and `accepted` event in one
    /// transaction), then queues it. A replay of the same request answers
    /// the first id and queues it again only if it is still queued.
    pub async fn submit(
        &self,
        clinic: &str,
        key: &str,
        body: NotificationRequest,
        now: DateTime<Utc>,
    ) -> Result<Submitted, NotifyError> {
        self.accept(clinic, key, body, now, false).await
    }

    /// [`Self::submit`] for vcare's own answer to a patient's SMS (its
    /// reserved category: no suppression holds it).
    pub(crate) async fn submit_answer(
        &self,
        clinic: &str,
        key: &str,
        body: NotificationRequest,
        now: DateTime<Utc>,
    ) -> Result<Submitted, NotifyError> {
        self.accept(clinic, key, body, now, true).await
    }

    async fn accept(
        &self,
        clinic: &str,
        key: &str,
        body: NotificationRequest,
        now: DateTime<Utc>,
        answer: bool,
    ) -> Result<Submitted, NotifyError> {
        let category_given = body.category.is_some();
        let mut request = body.validate_as(now, timezone_ok, &self.config.push_endpoints, answer)?;
        if !request.channels.iter().any(|c| self.config.routable.contains(c)) {
            let names: Vec<&str> = request.channels.iter().map(|c| c.as_str()).collect();
            return Err(
                Rejected::Impossible(format!("channels: no provider is configured for {}", names.join(", "))).into()
            );
        }
        // The clinic's template of the name, else the built-in: its
        // category (unless the request names one) and replies go with it.
        let template = match &request.message {
            Message::Template { name, version, .. } => Some(self.resolve_template(clinic, name, *version).await?),
            Message::Content(_) => None,
        };
        if let Some(t) = template.as_deref().filter(|t| t.version.is_some()) {
            if !category_given {
                request.category = t.category.clone();
            }
            if request.replies.is_empty() && request.channels.contains(&Channel::Sms) {
                request.replies = t.replies.clone();
            }
        }
        // Templates name the clinic and say which replies the message
        // offers: both the deployment's, never the caller's.
        if let Message::Template { variables, .. } = &mut request.message {
            variables.insert("clinic".to_owned(), self.config.clinic_name(clinic).to_owned());
            variables.remove("replies");
            if !request.replies.is_empty() {
                let offered: Vec<&str> = request.replies.iter().map(|r| r.as_str()).collect();
                variables.insert("replies".to_owned(), offered.join(","));
            }
        }
        let messages = render(&request, template.as_deref())?;
        let request_hash = sha256_hex(&serde_json::to_vec(&request).unwrap_or_default());
        if !request.recipient.push_tokens.is_empty() {
            // Tokens a provider already declared dead are left out.
            let hashes: Vec<String> = request.recipient.push_tokens.iter().map(token_hash).collect();
            let dead = self.store.dead_tokens(clinic, &hashes).await?;
            request.recipient.push_tokens.retain(|t| !dead.contains(&token_hash(t)));
        }
        let id = ids::prefixed("ntf");
        let mut address_hashes = BTreeMap::new();
        for (channel, address) in [(Channel::Sms, &request.recipient.phone), (Channel::Email, &request.recipient.email)]
        {
            if let Some(a) = address.as_deref().filter(|_| request.channels.contains(&channel)) {
                address_hashes.insert(channel, self.address_hash(channel, a).await?);
            }
        }
        let notification = Notification {
            notification_id: id.clone(),
            clinic_id: clinic.to_owned(),
            status: Status::Queued,
            channels: request.channels.clone(),
            priority: request.priority,
            send_at: request.send_at,
            created_at: now,
            updated_at: now,
            channel: None,
            provider: None,
            attempts: Vec::new(),
            recipient: MaskedRecipient::of(&request.recipient),
            timezone: request.recipient.timezone.clone(),
            sealed_recipient: self.seal_recipient(clinic, &id, &request.recipient).await?,
            sealed_messages: self.seal_messages(clinic, &id, &messages).await?,
            delivery: Default::default(),
            awaiting_receipt_since: None,
            // Its queue message may be lost (an enqueue that fails after the
            // write): the sweep finds it then.
            reconcile_at: Some(lifecycle::reconcile_at(request.send_at.map_or(now, |at| at.max(now)))),
            category: request.category.clone(),
            address_hashes,
            replies: request.replies.clone(),
            context: request.context.clone(),
            template: template.as_deref().map(Template::reference),
        };
        let event = DomainEvent::new(NOTIFICATION_ACCEPTED, clinic, &id, now, notification.summary());
        let delay = request.send_at.map_or(0, |at| (at - now).num_seconds());
        // A far `sendAt` waits in the due index (written with the
        // notification), not as a queue message re-sent every 15 minutes.
        let release = due::release_at(request.send_at, now);
        let waiting = release
            .map(|at| Due { at, kind: DueKind::Release, clinic: clinic.to_owned(), id: id.clone() })
            .map(|d| self.schedules.due().put(&d))
            .transpose()?;
        let key_hash = sha256_hex(key.as_bytes());
        let accepted = self
            .store
            .accept(&notification, &key_hash, &request_hash, &event, now, self.config.idempotency, waiting)
            .await?;
        Ok(match accepted {
            Accepted::New => {
                if release.is_none() {
                    self.enqueue(clinic, &id, delay).await?;
                }
                Submitted::Accepted(id)
            }
            Accepted::Existing { notification_id, same_request: true } => {
                // Its first enqueue may have failed; dispatch claims attempts, so
                // a second message sends nothing twice. Not visible yet: the
                // first request's transaction is still landing.
                match self.store.get(clinic, &notification_id).await? {
                    None => Submitted::InProgress,
                    Some((current, _)) => {
                        if current.status == Status::Queued && due::release_at(current.send_at, now).is_none() {
                            self.enqueue(clinic, &notification_id, delay).await?;
                        }
                        Submitted::Accepted(notification_id)
                    }
                }
            }
            Accepted::Existing { same_request: false, .. } => Submitted::Conflict,
            Accepted::InProgress => Submitted::InProgress,
        })
    }
}
