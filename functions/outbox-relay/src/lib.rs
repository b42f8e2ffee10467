//! `outbox-relay`: the only publisher of domain events.
//!
//! - **Stream**: the table's stream, filtered in the template to INSERTs
//!   of outbox records. Records are published in stream order to the
//!   domain-events FIFO queue as CloudEvents JSON, up to 10 per
//!   `SendMessageBatch`, with `MessageGroupId` = the aggregate (order per
//!   room or notification) and `MessageDeduplicationId` = the event id.
//!   Then each is marked published. At the first record that cannot be
//!   published or marked, the relay stops and reports that record
//!   (`batchItemFailures`): Lambda resumes the shard from it, so nothing
//!   is lost and a record is re-sent only with its own id.
//! - **Sweep** (schedule): records still unpublished `SWEEP_AFTER_SECONDS`
//!   (120) after they were written — a relay crash, a stream outage — are
//!   published and marked the same way, oldest first.

use std::sync::Arc;

use serde_json::Value;
use vcare_aws::SdkConfig;
use vcare_runtime::{Env, Error, EventFunction, LambdaEvent};

pub use vcare_comms::outbox::{Relay, Swept, relay};

/// One function, two triggers: a stream batch (`Records`) or the schedule.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<impl vcare_runtime::Function + use<>, Error> {
    let r = Arc::new(relay(env, sdk)?);
    Ok(EventFunction::new(move |event: LambdaEvent<Value>| {
        let r = r.clone();
        async move {
            if event.payload.get("Records").is_some() {
                let stream = serde_json::from_value(event.payload)?;
                Ok(serde_json::to_value(r.stream(stream).await)?)
            } else {
                Ok(serde_json::to_value(r.sweep().await?)?)
            }
        }
    }))
}
