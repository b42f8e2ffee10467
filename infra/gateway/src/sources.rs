//! Event source mappings: SQS queues, DynamoDB streams and schedules feeding
//! functions with Lambda's batching and failure semantics.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use vcare_aws::SdkConfig;

use crate::model::{EventSource, FunctionDef, ScheduleSource, SqsSource, StreamSource};
use crate::resolve::Stack;
use crate::{Deployed, GatewayConfig, GatewayError};

pub(crate) async fn start(
    tasks: &mut JoinSet<()>,
    functions: &HashMap<String, Arc<Deployed>>,
    stack: &Stack,
    config: &GatewayConfig,
    sdk: &SdkConfig,
    stopped: &watch::Receiver<bool>,
) -> Result<(), GatewayError> {
    let polled = |id: &str| config.only_sources.as_ref().is_none_or(|only| only.iter().any(|o| o == id));
    for function in functions.values().filter(|f| polled(&f.def.logical_id)) {
        for event in &function.def.events {
            match event {
                EventSource::Sqs(source) => {
                    let queue = stack
                        .logical_id_of(&source.queue_arn)
                        .and_then(|id| stack.physical.get(id))
                        .ok_or_else(|| {
                            GatewayError::Template(format!("{}: queue {} is not local", source.name, source.queue_arn))
                        })?;
                    for _ in 0..source.pollers {
                        let poller = SqsPoller {
                            function: function.clone(),
                            source: source.clone(),
                            url: queue.reference.clone(),
                            region: stack.region.clone(),
                            sqs: aws_sdk_sqs::Client::new(sdk),
                            retry_delay: config.retry_delay,
                            wait: config.poll_wait,
                        };
                        tasks.spawn(until_stopped(stopped.clone(), poller.run()));
                    }
                }
                EventSource::Stream(source) => {
                    let poller = StreamPoller {
                        function: function.clone(),
                        source: source.clone(),
                        table: stack.physical[&source.table_id].reference.clone(),
                        region: stack.region.clone(),
                        dynamodb: aws_sdk_dynamodb::Client::new(sdk),
                        streams: aws_sdk_dynamodbstreams::Client::new(sdk),
                        wait: config.poll_wait,
                        checkpoint: config.checkpoints.as_ref().map(|dir| {
                            dir.join(format!("{}-{}-{}.json", stack.name, function.def.logical_id, source.name))
                        }),
                    };
                    tasks.spawn(until_stopped(stopped.clone(), poller.run()));
                }
                EventSource::Schedule(schedule) if config.schedules => {
                    let (function, schedule, stack) = (function.clone(), schedule.clone(), stack.clone());
                    tasks.spawn(until_stopped(stopped.clone(), async move {
                        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + schedule.every, schedule.every);
                        loop {
                            timer.tick().await;
                            if let Err(e) = function.invoke(scheduled_event(&stack, &function.def, &schedule)).await {
                                tracing::warn!(function = %function.def.logical_id, schedule = %schedule.name, error = %e, "scheduled invocation failed");
                            }
                        }
                    }));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

async fn until_stopped(mut stopped: watch::Receiver<bool>, work: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = stopped.wait_for(|s| *s) => {}
        () = work => {}
    }
}

/// EventBridge's "Scheduled Event", or the schedule's `Input` when it has one.
pub(crate) fn scheduled_event(stack: &Stack, def: &FunctionDef, schedule: &ScheduleSource) -> Value {
    if let Some(input) = &schedule.input {
        return input.clone();
    }
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": stack.account,
        "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": stack.region,
        "resources": [stack.arn("events", &format!("rule/{}-{}", def.logical_id, schedule.name))],
        "detail": {},
    })
}

/// Which records of a batch failed, from a `ReportBatchItemFailures` answer.
/// `None`: the whole batch failed (an invalid answer counts as that, as in
/// Lambda).
fn failed_items(result: &Result<Value, vcare_runtime::Error>, report: bool, ids: &[String]) -> Option<HashSet<String>> {
    let value = match result {
        Err(_) => return None,
        Ok(_) if !report => return Some(HashSet::new()),
        Ok(v) => v,
    };
    let failures = match value.get("batchItemFailures") {
        None | Some(Value::Null) => return Some(HashSet::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return None,
    };
    let mut failed = HashSet::new();
    for item in failures {
        let id = item.get("itemIdentifier").and_then(Value::as_str).filter(|id| ids.iter().any(|i| i == id))?;
        failed.insert(id.to_owned());
    }
    Some(failed)
}

struct SqsPoller {
    function: Arc<Deployed>,
    source: SqsSource,
    url: String,
    region: String,
    sqs: aws_sdk_sqs::Client,
    retry_delay: Duration,
    wait: Duration,
}

impl SqsPoller {
    async fn run(self) {
        loop {
            if let Err(e) = self.once().await {
                tracing::warn!(source = %self.source.name, error = %e, "SQS poll failed");
                tokio::time::sleep(self.wait).await;
            }
        }
    }

    async fn once(&self) -> Result<(), String> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(self.source.batch_size as i32)
            .wait_time_seconds(self.wait.as_secs().clamp(1, 20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(());
        }
        let records: Vec<Value> = messages.iter().map(|m| self.record(m)).collect();
        let ids: Vec<String> = messages.iter().map(|m| m.message_id.clone().unwrap_or_default()).collect();
        let result = self.function.invoke(json!({"Records": records})).await;
        if let Err(e) = &result {
            tracing::warn!(function = %self.function.def.logical_id, error = %e, "SQS batch failed");
        }
        let failed = failed_items(&result, self.source.report_failures, &ids);
        let mut delete = Vec::new();
        let mut retry = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let handle = m.receipt_handle.clone().unwrap_or_default();
            let ok = failed.as_ref().is_some_and(|f| !f.contains(&ids[i]));
            if ok {
                delete.push(DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(handle).build());
            } else {
                retry.push(
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .visibility_timeout(self.retry_delay.as_secs() as i32)
                        .build(),
                );
            }
        }
        if !delete.is_empty() {
            let entries = delete.into_iter().collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
            self.sqs
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        }
        if !retry.is_empty() {
            let entries = retry.into_iter().collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
            self.sqs
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        }
        Ok(())
    }

    /// One record of Lambda's SQS event.
    fn record(&self, m: &aws_sdk_sqs::types::Message) -> Value {
        let attributes: serde_json::Map<String, Value> =
            m.attributes.iter().flatten().map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone()))).collect();
        let message_attributes: serde_json::Map<String, Value> = m
            .message_attributes
            .iter()
            .flatten()
            .map(|(k, a)| {
                use base64::Engine;
                let b64 = base64::engine::general_purpose::STANDARD;
                (
                    k.clone(),
                    json!({
                        "stringValue": a.string_value,
                        "binaryValue": a.binary_value.as_ref().map(|b| b64.encode(b.as_ref())),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": a.data_type,
                    }),
                )
            })
            .collect();
        json!({
            "messageId": m.message_id,
            "receiptHandle": m.receipt_handle,
            "body": m.body,
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": m.md5_of_body,
            "eventSource": "aws:sqs",
            "eventSourceARN": self.source.queue_arn,
            "awsRegion": self.region,
        })
    }
}

struct StreamPoller {
    function: Arc<Deployed>,
    source: StreamSource,
    table: String,
    region: String,
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    wait: Duration,
    /// Where the last processed sequence number of each shard is kept, so
    /// that a restarted gateway resumes where it stopped, as Lambda's event
    /// source mapping does (`None`: in memory only).
    checkpoint: Option<std::path::PathBuf>,
}

/// `<stream arn>/<shard id>` → the sequence number of its last processed record.
type Checkpoint = HashMap<String, String>;

impl StreamPoller {
    fn load_checkpoint(&self) -> Checkpoint {
        self.checkpoint
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_checkpoint(&self, done: &Checkpoint) {
        let Some(path) = &self.checkpoint else { return };
        let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec(done).unwrap_or_default())?;
            std::fs::rename(&tmp, path)
        });
        if let Err(e) = written {
            tracing::warn!(source = %self.source.name, error = %e, "stream checkpoint not saved");
        }
    }

    /// Takes the first `n` records as processed: their shards' checkpoints move on.
    fn processed(&self, n: usize, pending: &mut Vec<(String, Value)>, done: &mut Checkpoint) {
        if n == 0 {
            return;
        }
        for (shard, record) in pending.drain(..n) {
            if let Some(seq) = record["dynamodb"]["SequenceNumber"].as_str() {
                done.insert(shard, seq.to_owned());
            }
        }
        self.save_checkpoint(done);
    }

    async fn run(self) {
        let stream_arn = match self.dynamodb.describe_table().table_name(&self.table).send().await {
            Ok(d) => d.table.and_then(|t| t.latest_stream_arn),
            Err(e) => {
                tracing::error!(table = %self.table, error = %aws_sdk_dynamodb::error::DisplayErrorContext(e), "no stream");
                None
            }
        };
        let Some(stream_arn) = stream_arn else { return };
        let mut iterators: HashMap<String, Option<String>> = HashMap::new();
        let mut pending: Vec<(String, Value)> = Vec::new();
        let mut done = self.load_checkpoint();
        let mut retries = 0i64;
        loop {
            if let Err(e) = self.read(&stream_arn, &mut iterators, &done, &mut pending).await {
                tracing::warn!(source = %self.source.name, error = %e, "stream read failed");
            }
            if pending.is_empty() {
                tokio::time::sleep(self.wait.min(Duration::from_millis(250))).await;
                continue;
            }
            let take = pending.len().min(self.source.batch_size);
            let batch: Vec<Value> = pending[..take].iter().map(|(_, r)| r.clone()).collect();
            let ids: Vec<String> =
                batch.iter().map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap_or_default().to_owned()).collect();
            let result = self.function.invoke(json!({"Records": batch})).await;
            match failed_items(&result, self.source.report_failures, &ids) {
                Some(failed) if failed.is_empty() => {
                    self.processed(take, &mut pending, &mut done);
                    retries = 0;
                }
                failed => {
                    // Checkpoint: everything before the first failed record is done.
                    let first = failed.and_then(|f| ids.iter().position(|id| f.contains(id))).unwrap_or(0);
                    self.processed(first, &mut pending, &mut done);
                    retries += 1;
                    if self.source.max_retries >= 0 && retries > self.source.max_retries {
                        tracing::warn!(source = %self.source.name, "stream batch discarded after its retries");
                        let discarded = (take - first).min(pending.len());
                        self.processed(discarded, &mut pending, &mut done);
                        retries = 0;
                    } else {
                        tokio::time::sleep(self.wait.min(Duration::from_millis(500))).await;
                    }
                }
            }
        }
    }

    /// Reads new records from every shard into `pending` (filtered).
    async fn read(
        &self,
        stream_arn: &str,
        iterators: &mut HashMap<String, Option<String>>,
        done: &Checkpoint,
        pending: &mut Vec<(String, Value)>,
    ) -> Result<(), String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let described = self.streams.describe_stream().stream_arn(stream_arn).send().await.map_err(|e| err(&e))?;
        let shards = described.stream_description.and_then(|d| d.shards).unwrap_or_default();
        for shard in shards {
            let Some(shard_id) = shard.shard_id else { continue };
            // Checkpoints name the stream too: a recreated table has a new stream.
            let key = format!("{stream_arn}/{shard_id}");
            if !iterators.contains_key(&shard_id) {
                let kind = match done.get(&key) {
                    Some(_) => "AFTER_SEQUENCE_NUMBER",
                    None if self.source.trim_horizon => "TRIM_HORIZON",
                    None => "LATEST",
                };
                let it = self
                    .streams
                    .get_shard_iterator()
                    .stream_arn(stream_arn)
                    .shard_id(&shard_id)
                    .shard_iterator_type(kind.into())
                    .set_sequence_number(done.get(&key).cloned())
                    .send()
                    .await
                    .map_err(|e| err(&e))?;
                iterators.insert(shard_id.clone(), it.shard_iterator);
            }
            let Some(Some(iterator)) = iterators.get(&shard_id).cloned() else { continue };
            let got = self.streams.get_records().shard_iterator(iterator).send().await.map_err(|e| err(&e))?;
            iterators.insert(shard_id.clone(), got.next_shard_iterator);
            for r in got.records.unwrap_or_default() {
                let record = self.record(stream_arn, r);
                if self.source.filters.is_empty() || self.source.filters.iter().any(|p| matches(p, &record)) {
                    pending.push((key.clone(), record));
                }
            }
        }
        Ok(())
    }

    /// One record of Lambda's DynamoDB stream event.
    fn record(&self, stream_arn: &str, r: aws_sdk_dynamodbstreams::types::Record) -> Value {
        let change = r.dynamodb.unwrap_or_else(|| aws_sdk_dynamodbstreams::types::StreamRecord::builder().build());
        let image = |i: Option<HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
            i.map(|i| serde_json::to_value(serde_dynamo::Item::from(i)).unwrap_or_default())
        };
        json!({
            "eventID": r.event_id,
            "eventName": r.event_name.map(|n| n.as_str().to_owned()),
            "eventVersion": r.event_version,
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": {
                "ApproximateCreationDateTime": change.approximate_creation_date_time.map(|t| t.secs()),
                "Keys": image(change.keys),
                "NewImage": image(change.new_image),
                "OldImage": image(change.old_image),
                "SequenceNumber": change.sequence_number,
                "SizeBytes": change.size_bytes,
                "StreamViewType": change.stream_view_type.map(|v| v.as_str().to_owned()),
            },
            "eventSourceARN": stream_arn,
        })
    }
}

/// Lambda event filtering: every key of the pattern must match; a list of
/// values matches any of them; `{"prefix": ..}`, `{"exists": bool}` and
/// `{"anything-but": [..]}` are understood.
pub(crate) fn matches(pattern: &Value, event: &Value) -> bool {
    let Some(pattern) = pattern.as_object() else { return false };
    pattern.iter().all(|(key, want)| {
        let got = event.get(key);
        match want {
            Value::Object(_) => got.is_some_and(|g| matches(want, g)),
            Value::Array(options) => options.iter().any(|o| match o {
                Value::Object(rule) => {
                    if let Some(prefix) = rule.get("prefix").and_then(Value::as_str) {
                        got.and_then(Value::as_str).is_some_and(|g| g.starts_with(prefix))
                    } else if let Some(exists) = rule.get("exists").and_then(Value::as_bool) {
                        got.is_some() == exists
                    } else if let Some(but) = rule.get("anything-but") {
                        let excluded = but.as_array().cloned().unwrap_or_else(|| vec![but.clone()]);
                        got.is_some_and(|g| !excluded.contains(g))
                    } else {
                        false
                    }
                }
                scalar => got == Some(scalar),
            }),
            scalar => got == Some(scalar),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_patterns() {
        let record = json!({"eventName": "INSERT", "dynamodb": {"NewImage": {"type": {"S": "outbox#room"}}}});
        assert!(matches(&json!({"eventName": ["INSERT"]}), &record));
        assert!(!matches(&json!({"eventName": ["MODIFY", "REMOVE"]}), &record));
        assert!(matches(&json!({"dynamodb": {"NewImage": {"type": {"S": [{"prefix": "outbox#"}]}}}}), &record));
        assert!(!matches(&json!({"dynamodb": {"NewImage": {"type": {"S": [{"prefix": "room#"}]}}}}), &record));
        assert!(matches(&json!({"dynamodb": {"OldImage": [{"exists": false}]}}), &record));
        assert!(matches(&json!({"eventName": [{"anything-but": ["REMOVE"]}]}), &record));
    }

    #[test]
    fn batch_item_failures_follow_lambda_rules() {
        let ids = vec!["a".to_owned(), "b".to_owned()];
        let ok = |v: Value| -> Result<Value, vcare_runtime::Error> { Ok(v) };
        assert_eq!(failed_items(&ok(json!({"batchItemFailures": []})), true, &ids), Some(HashSet::new()));
        assert_eq!(failed_items(&ok(Value::Null), true, &ids), Some(HashSet::new()));
        assert_eq!(
            failed_items(&ok(json!({"batchItemFailures": [{"itemIdentifier": "b"}]})), true, &ids),
            Some(HashSet::from(["b".to_owned()]))
        );
        // An identifier that is not in the batch, or an empty one: the whole batch failed.
        assert_eq!(failed_items(&ok(json!({"batchItemFailures": [{"itemIdentifier": "zz"}]})), true, &ids), None);
        assert_eq!(failed_items(&ok(json!({"batchItemFailures": [{}]})), true, &ids), None);
        assert_eq!(failed_items(&Err("boom".into()), true, &ids), None);
        // Without ReportBatchItemFailures, a returned value is success for all.
        assert_eq!(
            failed_items(&ok(json!({"batchItemFailures": [{"itemIdentifier": "b"}]})), false, &ids),
            Some(HashSet::new())
        );
    }
}
