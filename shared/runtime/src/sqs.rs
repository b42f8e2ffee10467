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

/// Runs `handle` on a FIFO queue's records one after another, in the order
/// given; at the first that fails, it and every record after it are
/// reported (Lambda's rule for FIFO sources), so no record of a message
/// group is settled before an earlier one of that group.
pub async fn in_order<F, Fut>(event: SqsEvent, what: &'static str, handle: F) -> SqsBatchResponse
where
    F: Fn(aws_lambda_events::sqs::SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let mut response = SqsBatchResponse::default();
    let mut failed = false;
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if !failed && let Err(e) = handle(record).await {
            tracing::warn!(message_id = %id, error = %e, "{what} failed; it and what follows will be retried");
            failed = true;
        }
        if failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_order_stops_at_the_first_failure_and_reports_the_rest() {
        let mut event = SqsEvent::default();
        for (id, body) in [("m1", "ok"), ("m2", "bad"), ("m3", "ok")] {
            let mut m = aws_lambda_events::sqs::SqsMessage::default();
            m.message_id = Some(id.into());
            m.body = Some(body.into());
            event.records.push(m);
        }
        let seen = std::sync::Mutex::new(Vec::new());
        let response = in_order(event, "test", |m| {
            let body = m.body.unwrap_or_default();
            seen.lock().unwrap().push(body.clone());
            async move { if body == "bad" { Err(Error::from("no")) } else { Ok(()) } }
        })
        .await;
        let reported: Vec<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        assert_eq!(reported, ["m2", "m3"]);
        assert_eq!(*seen.lock().unwrap(), ["ok", "bad"], "nothing after the failure was handled");
    }
}
