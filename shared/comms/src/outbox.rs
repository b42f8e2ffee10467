//! The outbox relay: the only publisher of domain events (see the
//! `outbox-relay` function for its two triggers). Records are published in
//! order to the domain-events FIFO queue as CloudEvents JSON, up to 10 per
//! `SendMessageBatch`, with `MessageGroupId` = the aggregate (order per
//! room or notification) and `MessageDeduplicationId` = the event id; then
//! each is marked published. At the first record that cannot be published
//! or marked, it stops and says which, so nothing is lost and a record is
//! re-sent only with its own id.

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::Serialize;
use vcare_aws::SdkConfig;
use vcare_runtime::{Clock, Env, Error};
use vcare_store::{OutboxRecord, OutboxStore};

pub struct Relay {
    outbox: OutboxStore,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    /// The FHIR sync's queue, when a FHIR server is configured: it is sent
    /// the events FHIR hears of ([`vcare_domain::fhir::SYNCED`]), in the
    /// same order, groups and ids.
    fhir_queue_url: Option<String>,
    sweep_after: chrono::Duration,
    clock: Clock,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Swept {
    pub published: usize,
}

/// The relay for a table and queue named directly (the operators' tool).
pub fn relay_for(sdk: &SdkConfig, table: &str, queue_url: &str) -> Relay {
    Relay {
        outbox: OutboxStore::new(aws_sdk_dynamodb::Client::new(sdk), table),
        sqs: aws_sdk_sqs::Client::new(sdk),
        queue_url: queue_url.to_owned(),
        fhir_queue_url: None,
        sweep_after: chrono::Duration::seconds(120),
        clock: Clock::system(),
    }
}

pub fn relay(env: &Env, sdk: &SdkConfig) -> Result<Relay, Error> {
    Ok(Relay {
        outbox: OutboxStore::new(aws_sdk_dynamodb::Client::new(sdk), env.required("TABLE_NAME")?),
        sqs: aws_sdk_sqs::Client::new(sdk),
        queue_url: env.required("DOMAIN_EVENTS_QUEUE_URL")?,
        // `FHIR_QUEUE_URL` is set only where `FhirBaseUrl` is (the template's condition).
        fhir_queue_url: env.get("FHIR_QUEUE_URL").filter(|u| !u.is_empty()).map(str::to_owned),
        sweep_after: chrono::Duration::seconds(env.bounded("SWEEP_AFTER_SECONDS", 120, 0, 86_400)?),
        clock: Clock::system(),
    })
}

impl Relay {
    /// Publishes a stream batch; reports the first record not done.
    pub async fn stream(&self, event: StreamEvent) -> DynamoDbEventResponse {
        let mut records = Vec::new();
        for record in event.records {
            let sequence = record.change.sequence_number.clone().unwrap_or_default();
            let item: vcare_store::items::Item = record.change.new_image.into();
            match OutboxRecord::from_item(&item) {
                Some(r) => records.push((sequence, r)),
                // The template's filter passes only outbox INSERTs; anything else is not ours.
                None => tracing::debug!(sequence, "not an outbox record"),
            }
        }
        let mut response = DynamoDbEventResponse::default();
        if let Err((index, e)) = self.publish(records.iter().map(|(_, r)| r)).await {
            tracing::warn!(error = %e, "publishing stopped; the rest of the batch will come again");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(records[index].0.clone());
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// Publishes what the stream path left behind.
    pub async fn sweep(&self) -> Result<Swept, Error> {
        let before = self.clock.now() - self.sweep_after;
        let records = self.outbox.pending(before, 1000).await?;
        let published = match self.publish(records.iter()).await {
            Ok(n) => n,
            Err((index, e)) => {
                tracing::warn!(error = %e, published = index, "sweep stopped; the next run continues");
                index
            }
        };
        if published > 0 {
            tracing::info!(published, "outbox sweep published records the stream path missed");
        }
        Ok(Swept { published })
    }

    /// Publishes records again (an operator's replay), in order, with their
    /// own event ids but a fresh de-duplication id, so the FIFO queue's
    /// 5-minute de-duplication does not swallow them. Nothing is marked.
    pub async fn replay(&self, records: &[OutboxRecord], replay_id: &str) -> Result<usize, Error> {
        for chunk in records.chunks(10) {
            let refused = self.send(&self.queue_url, chunk, |r| format!("{}-{replay_id}", r.event_id)).await?;
            if refused.is_some() {
                return Err("SQS refused a replayed event".into());
            }
        }
        Ok(records.len())
    }

    /// Sends up to 10 records in order as one batch; the index of the first
    /// entry SQS refused, if any.
    async fn send<R: std::borrow::Borrow<OutboxRecord>>(
        &self,
        queue_url: &str,
        chunk: &[R],
        dedup: impl Fn(&OutboxRecord) -> String,
    ) -> Result<Option<usize>, Error> {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let r = r.borrow();
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&r.event)
                    .message_group_id(&r.aggregate_id)
                    .message_deduplication_id(dedup(r))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::from(e.to_string()))?;
        let sent = self
            .sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| Error::from(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(sent.failed().iter().filter_map(|f| f.id().parse::<usize>().ok()).min())
    }

    /// Publishes and marks in order, 10 at a time; on failure, the index of
    /// the first record not both published and marked.
    async fn publish<'a>(&self, records: impl Iterator<Item = &'a OutboxRecord>) -> Result<usize, (usize, Error)> {
        let records: Vec<&OutboxRecord> = records.collect();
        let mut done = 0;
        for chunk in records.chunks(10) {
            // The first entry SQS refused: it and everything after it wait.
            let first_failed =
                self.send(&self.queue_url, chunk, |r| r.event_id.clone()).await.map_err(|e| (done, e))?;
            let ok = first_failed.unwrap_or(chunk.len());
            // The FHIR sync's share, before anything is marked: a failure
            // here sends the chunk again, and both FIFO queues drop what
            // they already have by its de-duplication id (five minutes).
            if let Some(fhir) = &self.fhir_queue_url {
                let synced: Vec<&OutboxRecord> =
                    chunk[..ok].iter().copied().filter(|r| vcare_domain::fhir::is_synced(&r.event_type())).collect();
                if !synced.is_empty() {
                    match self.send(fhir, &synced, |r| r.event_id.clone()).await {
                        Ok(None) => {}
                        Ok(Some(_)) => return Err((done, "the FHIR queue refused an entry".into())),
                        Err(e) => return Err((done, e)),
                    }
                }
            }
            let now = self.clock.now();
            for r in &chunk[..ok] {
                if let Some(lag) = r.written_at().map(|t| (now - t).num_milliseconds()) {
                    vcare_runtime::metrics::record(
                        "OutboxLag",
                        lag as f64,
                        "Milliseconds",
                        &[("queue", "domain-events")],
                    );
                }
            }
            let mut marks = tokio::task::JoinSet::new();
            for (i, r) in chunk[..ok].iter().enumerate() {
                let (outbox, id) = (self.outbox.clone(), r.event_id.clone());
                marks.spawn(async move { (i, outbox.mark_published(&id, now).await) });
            }
            let mut unmarked: Option<(usize, Error)> = None;
            while let Some(joined) = marks.join_next().await {
                let (i, result) = joined.map_err(|e| (done, Error::from(e.to_string())))?;
                if let Err(e) = result
                    && unmarked.as_ref().is_none_or(|(j, _)| i < *j)
                {
                    unmarked = Some((i, e.into()));
                }
            }
            if let Some((i, e)) = unmarked {
                return Err((done + i, e));
            }
            if let Some(i) = first_failed {
                return Err((done + i, "SQS refused an entry".into()));
            }
            done += chunk.len();
        }
        Ok(done)
    }
}
