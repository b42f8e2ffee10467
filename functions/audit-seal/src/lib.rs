//! `audit-seal`: the audit trail's sequencer (`vcare_care::audit_seal`).
//!
//! - **Stream**: the audit table's stream, filtered in the template to
//!   INSERTs of records. Each batch is sealed into its clinics' chains; a
//!   batch that cannot be sealed is reported from its first record, and
//!   Lambda brings it again (what was sealed is left out the second time).
//! - **Sweep** (schedule): records the stream did not bring, up to
//!   `SETTLE_SECONDS` (900) ago, sealed the same way.

use std::sync::Arc;

use serde_json::Value;
use vcare_aws::SdkConfig;
use vcare_care::audit_seal::Sealer;
use vcare_runtime::{Env, Error, EventFunction, LambdaEvent};

/// One function, two triggers: a stream batch (`Records`) or the schedule.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<impl vcare_runtime::Function + use<>, Error> {
    let sealer = Arc::new(Sealer::from_env(env, sdk)?);
    Ok(EventFunction::new(move |event: LambdaEvent<Value>| {
        let sealer = sealer.clone();
        async move {
            if event.payload.get("Records").is_some() {
                let stream = serde_json::from_value(event.payload)?;
                Ok(serde_json::to_value(sealer.stream(stream).await)?)
            } else {
                Ok(serde_json::to_value(sealer.sweep().await?)?)
            }
        }
    }))
}
