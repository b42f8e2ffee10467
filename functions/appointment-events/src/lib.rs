//! `appointment-events`: the appointment events queue (CloudEvents JSON,
//! events/catalogue `appointment.*`).
//!
//! - `appointment.created` for a `video` appointment: its room, created
//!   exactly as `POST /rooms` would (one room per appointment and clinic:
//!   a redelivery, or a room the API made first, is the same room), and
//!   each participant's contact sealed under the room for its reminders.
//! - `appointment.cancelled`: the room is cancelled (with its event) and
//!   every participant with a contact is told, through the notification
//!   path, under the key `cancel:<room>:<user>` — a redelivery tells no one
//!   twice.
//! - Any other type: a log line, acknowledged. A malformed event fails
//!   only itself (partial batch) and ends in the DLQ after the queue's
//!   receives.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use vcare_aws::SdkConfig;
use vcare_care::Rooms;
use vcare_comms::{Notice, Notifications};
use vcare_domain::appointment::{
    AppointmentCancelled, AppointmentCreated, AppointmentEvent, CANCELLED, CREATED, local_when,
};
use vcare_domain::events::{DomainEvent, ROOM_CANCELLED, ROOM_CREATED};
use vcare_domain::ids;
use vcare_domain::notification::Priority;
use vcare_domain::room::{Room, RoomStatus};
use vcare_domain::room_records::SealedContact;
use vcare_runtime::{Env, Error, EventFunction, LambdaEvent};
use vcare_store::Created;

pub struct Appointments {
    care: Rooms,
    comms: Notifications,
}

/// What one message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppointmentOutcome {
    RoomReady(String),
    Cancelled { room_id: String, told: usize },
    Ignored(&'static str),
}

pub fn appointments(env: &Env, sdk: &SdkConfig) -> Result<Appointments, Error> {
    Ok(Appointments { care: Rooms::from_env(env, sdk)?, comms: Notifications::from_env(env, sdk)? })
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<impl vcare_runtime::Function + use<>, Error> {
    let a = Arc::new(appointments(env, sdk)?);
    Ok(EventFunction::new(move |event: LambdaEvent<SqsEvent>| {
        let a = a.clone();
        async move { Ok::<_, Error>(a.batch(event.payload).await) }
    }))
}

/// Where a message is malformed, never what it holds: serde's own text
/// quotes the offending value, which may be a phone number.
fn malformed(e: &serde_json::Error) -> String {
    format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column())
}

impl Appointments {
    pub async fn batch(self: &Arc<Self>, event: SqsEvent) -> SqsBatchResponse {
        vcare_runtime::sqs::batch(event, "appointment event", |body| {
            let a = self.clone();
            async move {
                let outcome = a.handle(&body).await?;
                tracing::info!(?outcome, "appointment event");
                Ok(())
            }
        })
        .await
    }

    pub async fn handle(&self, body: &str) -> Result<AppointmentOutcome, Error> {
        let event: AppointmentEvent =
            serde_json::from_str(body).map_err(|e| format!("not an appointment event: {}", malformed(&e)))?;
        if !ids::is_valid_external_id(&event.clinicid) {
            return Err("clinicid: not a clinic id".into());
        }
        match event.kind.as_str() {
            CREATED => {
                let data: AppointmentCreated = serde_json::from_value(event.data)
                    .map_err(|e| format!("{CREATED} {}: malformed data: {}", event.id, malformed(&e)))?;
                self.created(&event.clinicid, data).await
            }
            CANCELLED => {
                let data: AppointmentCancelled = serde_json::from_value(event.data)
                    .map_err(|e| format!("{CANCELLED} {}: malformed data: {}", event.id, malformed(&e)))?;
                self.cancelled(&event.clinicid, data).await
            }
            other => {
                tracing::info!(event_type = other, event_id = %event.id, "not an appointment event vcare acts on; acknowledged");
                Ok(AppointmentOutcome::Ignored("unknown type"))
            }
        }
    }

    async fn created(&self, clinic: &str, data: AppointmentCreated) -> Result<AppointmentOutcome, Error> {
        if data.kind != "video" {
            return Ok(AppointmentOutcome::Ignored("not a video appointment"));
        }
        let request = data.room_request().validate().map_err(|e| format!("{CREATED}: {e}"))?;
        let fingerprint = request.fingerprint();
        let now = self.care.now();
        let provider = self.care.provider_for(clinic, None)?;
        let room = request.into_room(clinic, ids::room_id(), ids::jitsi_room(), provider, now);
        let event = DomainEvent::about_room(ROOM_CREATED, &room, now);
        let room = match self.care.create(&room, &fingerprint, &event).await? {
            Created::New(room) => room,
            Created::Existing { room, same_request } => {
                if !same_request {
                    tracing::info!(room_id = %room.room_id, "the appointment's room exists with other details; kept");
                }
                room
            }
        };
        for recipient in data.recipients() {
            let Some(user) = recipient.user_id.clone() else { continue };
            if !room.participants.iter().any(|p| p.user_id == user) {
                continue;
            }
            let sealed = self.comms.seal_contact(clinic, &room.room_id, &recipient).await?;
            self.care.store.keep_contact(&room, &user, &SealedContact { sealed_contact: sealed }).await?;
        }
        Ok(AppointmentOutcome::RoomReady(room.room_id))
    }

    async fn cancelled(&self, clinic: &str, data: AppointmentCancelled) -> Result<AppointmentOutcome, Error> {
        let Some((room, _)) = self.care.store.by_appointment(clinic, &data.appointment_id).await? else {
            tracing::info!("cancelled appointment has no room; acknowledged");
            return Ok(AppointmentOutcome::Ignored("no room"));
        };
        let now = self.care.now();
        let (room, _) = self
            .care
            .store
            .update(clinic, &room.room_id, |current| {
                if !current.status.can_become(RoomStatus::Cancelled) {
                    return None;
                }
                let mut next = current.clone();
                next.status = RoomStatus::Cancelled;
                Some((next.clone(), vec![DomainEvent::about_room(ROOM_CANCELLED, &next, now)]))
            })
            .await?
            .ok_or("the room vanished")?;
        if room.status != RoomStatus::Cancelled {
            // Ended before the cancellation came: nothing to tell.
            return Ok(AppointmentOutcome::Ignored("room already ended"));
        }
        let told = self.tell(&room, now).await?;
        Ok(AppointmentOutcome::Cancelled { room_id: room.room_id, told })
    }

    /// Each participant with a contact gets the cancellation notice once.
    async fn tell(&self, room: &Room, now: chrono::DateTime<chrono::Utc>) -> Result<usize, Error> {
        let mut told = 0;
        for p in &room.participants {
            let Some(contact) = self.care.store.contact(room, &p.user_id).await? else { continue };
            let recipient =
                self.comms.open_contact(&room.clinic_id, &room.room_id, &p.user_id, &contact.sealed_contact).await?;
            let when = local_when(room.scheduled_start, recipient.timezone.as_deref());
            let key = format!("cancel:{}:{}", room.room_id, p.user_id);
            let variables = BTreeMap::from([("when".to_owned(), when)]);
            let notice = Notice {
                template: "appointment-cancelled",
                variables,
                priority: Priority::High,
                context: None,
                replies: Vec::new(),
            };
            let sent = self.comms.notify(&room.clinic_id, &key, recipient, notice, now).await?;
            if sent.is_some() {
                told += 1;
            }
        }
        Ok(told)
    }
}
