//! SQS batches as Lambda hands them over: every record handled at once,
//! and only the ones that failed reported (`batchItemFailures`), so the
//! queue retries those alone and its redrive takes them to the DLQ.

use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use crate::Error;

/// Runs `handle` on every record's body concurrently.
pub async fn batch<F, Fut>(event: SqsEvent, what: &'static str, handle: F) -> SqsBatchResponse
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let work = handle(record.body.unwrap_or_default());
        tasks.spawn(async move { (id, work.await) });
    }
    let mut response = SqsBatchResponse::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((id, Err(e))) => {
                tracing::warn!(message_id = %id, error = %e, "{what} failed; it will be retried");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
            // A panicked task: its record cannot be named; the invocation's
            // other records stand, and this one comes back by visibility timeout.
            Err(e) => tracing::error!(error = %e, "{what} task failed"),
        }
    }
    response
}
