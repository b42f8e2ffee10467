//! `audit-export`: the audit table's stream (INSERTs, filtered in the
//! template) into the audit bucket, each record an object under S3 Object
//! Lock in compliance mode for its retention (`vcare_care::audit_export`).
//! A record that cannot be exported stops the batch there
//! (`batchItemFailures`); Lambda retries it from that record for as long
//! as the stream keeps it (24 hours). The table keeps every record in any
//! case: the export is the copy no one can delete.

use std::sync::Arc;

use serde_json::Value;
use vcare_aws::SdkConfig;
use vcare_care::audit_export::AuditExport;
use vcare_runtime::{Env, Error, EventFunction, LambdaEvent};

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<impl vcare_runtime::Function + use<>, Error> {
    let export = Arc::new(AuditExport::from_env(env, sdk)?);
    Ok(EventFunction::new(move |event: LambdaEvent<Value>| {
        let export = export.clone();
        async move {
            let stream = serde_json::from_value(event.payload)?;
            Ok(serde_json::to_value(export.stream(stream).await)?)
        }
    }))
}
