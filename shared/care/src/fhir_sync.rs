//! The FHIR sync (issue 21): each domain event about a notification or a
//! consultation makes its `Communication` or `Encounter` on `FhirBaseUrl`
//! the state vcare holds now. The event is only the trigger: the resource
//! is built from the stored notification or room, so a redelivered,
//! replayed or late event writes the newest state, never its own older one.
//! Writes go against the version just read (`If-Match`); a version that
//! moved in between is read again. A server that cannot now (5xx, 429, no
//! answer) is retried by the queue; one that refuses the resource (another
//! 4xx) would refuse it again, so the message goes to the dead-letter
//! queue at once with the reason.

use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use vcare_aws::SdkConfig;
use vcare_domain::fhir::{self, Answer, Target};
use vcare_fhir::{FhirServer, Trouble};
use vcare_runtime::{Env, Error};
use vcare_store::{NotificationStore, RoomStore};

/// How often a write is tried again against a version that moved.
const STALE_ATTEMPTS: usize = 3;

pub struct FhirSync {
    rooms: RoomStore,
    notifications: NotificationStore,
    server: FhirServer,
    sqs: aws_sdk_sqs::Client,
    dead_letters: String,
}

/// What one event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// The resource written; the server's status.
    Written(u16),
    /// Nothing to write, and why.
    Nothing(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncError {
    /// Try again later (the queue's redrive).
    Retry(String),
    /// The server refuses the resource: retrying repeats it.
    Refused(String),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Retry(why) | Self::Refused(why) => f.write_str(why),
        }
    }
}

fn trouble(t: Trouble) -> SyncError {
    match t {
        Trouble::Status(s) if fhir::answer(s) == Answer::Refused => SyncError::Refused(t.to_string()),
        Trouble::Unusable(_) => SyncError::Refused(t.to_string()),
        _ => SyncError::Retry(t.to_string()),
    }
}

impl FhirSync {
    /// `FHIR_BASE_URL` (empty: no sync, `None`), `FHIR_TIMEOUT_MS` (5,000),
    /// `TABLE_NAME`, `FHIR_DLQ_URL`.
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Option<Self>, Error> {
        let base = env.get("FHIR_BASE_URL").unwrap_or_default().trim().to_owned();
        if base.is_empty() {
            return Ok(None);
        }
        if !(base.starts_with("https://") || base.starts_with("http://")) || base.len() > 2048 {
            return Err("FHIR_BASE_URL: an http(s) URL of the FHIR R4 server's base".into());
        }
        let timeout = Duration::from_millis(env.bounded("FHIR_TIMEOUT_MS", 5_000, 100, 30_000)?);
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let table = env.required("TABLE_NAME")?;
        Ok(Some(Self {
            rooms: RoomStore::new(ddb.clone(), &table),
            notifications: NotificationStore::new(ddb, &table),
            server: FhirServer::new(&base, timeout),
            sqs: aws_sdk_sqs::Client::new(sdk),
            dead_letters: env.required("FHIR_DLQ_URL")?,
        }))
    }

    /// Makes `target`'s resource on the server the state stored now.
    pub async fn sync(&self, clinic: &str, target: &Target) -> Result<Synced, SyncError> {
        let unavailable = |e: vcare_store::StoreError| SyncError::Retry(format!("the store: {e}"));
        let resource = match target {
            Target::Communication { notification_id } => {
                match self.notifications.get(clinic, notification_id).await.map_err(unavailable)? {
                    Some((n, _)) => fhir::communication(&n),
                    None => return Ok(Synced::Nothing("no such notification (expired or another clinic's)")),
                }
            }
            Target::Encounter { room_id } => match self.rooms.get(clinic, room_id).await.map_err(unavailable)? {
                Some((room, _)) => fhir::encounter(&room),
                None => return Ok(Synced::Nothing("no such room")),
            },
        };
        for _ in 0..STALE_ATTEMPTS {
            let current = self.server.current(target).await.map_err(trouble)?;
            let status = self.server.put(target, resource.clone(), current.as_ref()).await.map_err(trouble)?;
            match fhir::answer(status) {
                Answer::Done => return Ok(Synced::Written(status)),
                Answer::Stale => continue,
                Answer::Retry => return Err(SyncError::Retry(format!("the FHIR server answered {status}"))),
                Answer::Refused => return Err(SyncError::Refused(format!("the FHIR server answered {status}"))),
            }
        }
        Err(SyncError::Retry("the resource's version kept changing".into()))
    }

    /// Puts `body` on the dead-letter queue with `reason` (a message
    /// attribute), in its message group, under its own de-duplication id.
    pub async fn dead_letter(&self, body: &str, group: &str, dedup: &str, reason: &str) -> Result<(), Error> {
        let reason = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(reason.chars().take(256).collect::<String>())
            .build()
            .map_err(|e| Error::from(e.to_string()))?;
        self.sqs
            .send_message()
            .queue_url(&self.dead_letters)
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(dedup)
            .message_attributes("reason", reason)
            .send()
            .await
            .map_err(|e| Error::from(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
