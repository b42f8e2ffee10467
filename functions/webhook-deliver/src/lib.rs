//! `webhook-deliver`, on two queues:
//!
//! - the webhook consumer of the domain-events topic (FIFO, every type):
//!   each event fanned out to the clinic's endpoints that want it, in
//!   order; at the first that fails, it and the rest come back;
//! - the delivery queue: each message one try of one delivery, all of a
//!   batch at once (a slow endpoint holds only its own try, to the
//!   timeout).

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use vcare_aws::SdkConfig;
use vcare_comms::webhook_deliveries::{DeliveryMessage, WebhookDeliveries};
use vcare_runtime::{Env, Error, EventFunction, LambdaEvent};

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<impl vcare_runtime::Function + use<>, Error> {
    let w = Arc::new(WebhookDeliveries::from_env(env, sdk)?);
    Ok(EventFunction::new(move |event: LambdaEvent<SqsEvent>| {
        let w = w.clone();
        async move {
            let fifo = event
                .payload
                .records
                .first()
                .and_then(|r| r.event_source_arn.as_deref())
                .is_some_and(|a| a.ends_with(".fifo"));
            if fifo {
                return Ok::<_, Error>(
                    vcare_runtime::sqs::in_order(event.payload, "webhook fan-out", |m| {
                        let w = w.clone();
                        async move {
                            let event: serde_json::Value = serde_json::from_str(m.body.as_deref().unwrap_or_default())
                                .map_err(|_| Error::from("not a JSON event"))?;
                            let queued = w.fan_out(&event).await?;
                            tracing::debug!(queued, "webhook deliveries queued");
                            Ok(())
                        }
                    })
                    .await,
                );
            }
            Ok(vcare_runtime::sqs::batch(event.payload, "webhook delivery", |body| {
                let w = w.clone();
                async move {
                    let message: DeliveryMessage =
                        serde_json::from_str(&body).map_err(|_| Error::from("not a delivery message"))?;
                    w.deliver(&message).await
                }
            })
            .await)
        }
    }))
}
