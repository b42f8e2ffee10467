//! A consumer's replay (issue 22): the published events of a time range of
//! the last 7 days, sent again to one consumer's queue only — those its
//! subscription's filter policy lets through, in order, with their own
//! event ids (so the consumer's de-duplication holds) and a fresh FIFO
//! de-duplication id (so the queue's five-minute window does not swallow
//! them). Found from the outbox's published index, never by a scan.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_domain::fanout::Policy;
use vcare_runtime::Error;
use vcare_store::{OutboxRecord, OutboxStore};

pub struct Replayer {
    outbox: OutboxStore,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    topic_arn: String,
}

fn sns_error<E: std::error::Error + Send + Sync + 'static>(e: aws_sdk_sns::error::SdkError<E>) -> Error {
    aws_sdk_sns::error::DisplayErrorContext(e).to_string().into()
}

fn sqs_error<E: std::error::Error + Send + Sync + 'static>(e: aws_sdk_sqs::error::SdkError<E>) -> Error {
    aws_sdk_sqs::error::DisplayErrorContext(e).to_string().into()
}

impl Replayer {
    pub fn new(sdk: &SdkConfig, table: &str, topic_arn: &str) -> Self {
        Self {
            outbox: OutboxStore::new(aws_sdk_dynamodb::Client::new(sdk), table),
            sns: aws_sdk_sns::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            topic_arn: topic_arn.to_owned(),
        }
    }

    /// The filter policy of the topic's subscription that delivers to
    /// `queue_url`; an error if no subscription does (not a consumer).
    pub async fn policy_of(&self, queue_url: &str) -> Result<Policy, Error> {
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sqs_error)?
            .attributes
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .ok_or("the queue has no ARN")?;
        let mut next = None;
        loop {
            let page = self
                .sns
                .list_subscriptions_by_topic()
                .topic_arn(&self.topic_arn)
                .set_next_token(next)
                .send()
                .await
                .map_err(sns_error)?;
            for s in page.subscriptions() {
                if s.endpoint() == Some(arn.as_str())
                    && let Some(sub) = s.subscription_arn()
                {
                    let attrs =
                        self.sns.get_subscription_attributes().subscription_arn(sub).send().await.map_err(sns_error)?;
                    return match attrs.attributes().and_then(|a| a.get("FilterPolicy")) {
                        Some(policy) => Policy::parse(policy).map_err(Error::from),
                        None => Ok(Policy::all()),
                    };
                }
            }
            next = page.next_token;
            if next.is_none() {
                return Err("no subscription of the domain-events topic delivers to that queue".into());
            }
        }
    }

    /// The published events of `[from, to)` the consumer's policy accepts.
    pub async fn range(
        &self,
        policy: &Policy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<OutboxRecord>, Error> {
        let records = self.outbox.between(from, to).await?;
        Ok(records
            .into_iter()
            .filter(|r| {
                let (kind, clinic) = r.event_type_and_clinic();
                policy.accepts(&kind, &clinic)
            })
            .collect())
    }

    /// Sends `records` to the consumer's queue in order, 10 a batch.
    pub async fn send(&self, queue_url: &str, records: &[OutboxRecord], replay_id: &str) -> Result<usize, Error> {
        for chunk in records.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&r.event)
                        .message_group_id(&r.aggregate_id)
                        .message_deduplication_id(format!("{}-{replay_id}", r.event_id))
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
                .map_err(sqs_error)?;
            if !sent.failed().is_empty() {
                // Some of the batch may be in: replaying the range again is
                // safe, the consumer drops by event id what it already has.
                return Err("the consumer's queue refused a replayed event; replay the range again".into());
            }
        }
        Ok(records.len())
    }
}
