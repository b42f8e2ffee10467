//! `dispatch`: the SQS-triggered worker that sends notifications. Each
//! message names a notification (ids only); records of a batch run
//! concurrently, one that fails unexpectedly is reported alone
//! (`batchItemFailures`) and the queue's redrive takes it to the DLQ in the
//! end. What happens to a notification is decided by
//! `vcare_domain::lifecycle` and carried out by [`Dispatcher`].

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use vcare_aws::SdkConfig;
use vcare_runtime::{Clock, Env, Error, EventFunction, LambdaEvent};

pub use vcare_comms::dispatch::{Dispatcher, Handled};

/// The dispatcher on the system clock.
pub async fn dispatcher(env: &Env, sdk: &SdkConfig) -> Result<Dispatcher, Error> {
    vcare_comms::dispatch::dispatcher(env, sdk, Clock::system()).await
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<impl vcare_runtime::Function + use<>, Error> {
    let d = Arc::new(dispatcher(env, sdk).await?);
    Ok(EventFunction::new(move |event: LambdaEvent<SqsEvent>| {
        let d = d.clone();
        async move { Ok::<_, Error>(d.batch(event.payload).await) }
    }))
}
