//! The outbox relay: the only publisher of domain events (see the
//! `outbox-relay` function for its two triggers). Records are published in
//! order to the domain-events FIFO topic as CloudEvents JSON, up to 10 per
//! `PublishBatch`, with `MessageGroupId` = the aggregate (order per room or
//! notification), `MessageDeduplicationId` = the event id, and the message
//! attributes consumers' subscriptions filter on (`type`, `clinic`); then
//! each is marked published. At the first record that cannot be published
//! or marked, it stops and says which, so nothing is lost and a record is
//! re-sent only with its own id (the topic drops it within 5 minutes).

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use serde::Serialize;
use vcare_aws::SdkConfig;
use vcare_domain::fanout;
use vcare_runtime::{Clock, Env, Error};
use vcare_store::{OutboxRecord, OutboxStore};

pub struct Relay {
    outbox: OutboxStore,
    sns: aws_sdk_sns::Client,
    topic_arn: String,
    sweep_after: chrono::Duration,
    clock: Clock,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Swept {
    pub published: usize,
}

pub fn relay(env: &Env, sdk: &SdkConfig) -> Result<Relay, Error> {
    Ok(Relay {
        outbox: OutboxStore::new(aws_sdk_dynamodb::Client::new(sdk), env.required("TABLE_NAME")?),
        sns: aws_sdk_sns::Client::new(sdk),
        topic_arn: env.required("DOMAIN_EVENTS_TOPIC_ARN")?,
        sweep_after: chrono::Duration::seconds(env.bounded("SWEEP_AFTER_SECONDS", 120, 0, 86_400)?),
        clock: Clock::system(),
    })
}

fn attribute(value: &str) -> Result<MessageAttributeValue, Error> {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().map_err(|e| e.to_string().into())
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

    /// Publishes up to 10 records in order as one batch; the index of the
    /// first entry the topic refused, if any.
    async fn send(&self, chunk: &[&OutboxRecord]) -> Result<Option<usize>, Error> {
        let mut entries = Vec::with_capacity(chunk.len());
        for (i, r) in chunk.iter().enumerate() {
            let (kind, clinic) = r.event_type_and_clinic();
            // SNS refuses an empty attribute value; an event always has both.
            let entry = PublishBatchRequestEntry::builder()
                .id(i.to_string())
                .message(&r.event)
                .message_group_id(&r.aggregate_id)
                .message_deduplication_id(&r.event_id)
                .message_attributes(fanout::TYPE, attribute(if kind.is_empty() { "unknown" } else { &kind })?)
                .message_attributes(fanout::CLINIC, attribute(if clinic.is_empty() { "unknown" } else { &clinic })?)
                .build()
                .map_err(|e| Error::from(e.to_string()))?;
            entries.push(entry);
        }
        let sent = self
            .sns
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
            .map_err(|e| Error::from(aws_sdk_sns::error::DisplayErrorContext(e).to_string()))?;
        Ok(sent.failed().iter().filter_map(|f| f.id().parse::<usize>().ok()).min())
    }

    /// Publishes and marks in order, 10 at a time; on failure, the index of
    /// the first record not both published and marked.
    async fn publish<'a>(&self, records: impl Iterator<Item = &'a OutboxRecord>) -> Result<usize, (usize, Error)> {
        let records: Vec<&OutboxRecord> = records.collect();
        let mut done = 0;
        for chunk in records.chunks(10) {
            // The first entry SQS refused: it and everything after it wait.
            let first_failed = self.send(chunk).await.map_err(|e| (done, e))?;
            let ok = first_failed.unwrap_or(chunk.len());
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
                let (outbox, record) = (self.outbox.clone(), (*r).clone());
                marks.spawn(async move { (i, outbox.mark_published(&record, now).await) });
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
