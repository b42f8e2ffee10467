//! `fhir-sync`: the FHIR queue (FIFO, a message group per notification or
//! room), a consumer of the domain-events topic whose subscription lets
//! through the events FHIR hears of.
//! Records are handled in order; at the first that must be retried, it and
//! the rest of the batch come back, so a resource's states are written in
//! the order they happened. A record the server refuses (4xx), or that is
//! not an event, goes to the dead-letter queue with the reason and is
//! settled. With `FHIR_BASE_URL` unset every record is settled unwritten
//! (the relay sends none then).

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use serde_json::Value;
use vcare_aws::SdkConfig;
use vcare_care::fhir_sync::{FhirSync, SyncError, Synced};
use vcare_domain::fhir::Target;
use vcare_runtime::{Env, Error, EventFunction, LambdaEvent};

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<impl vcare_runtime::Function + use<>, Error> {
    let sync = FhirSync::from_env(env, sdk)?.map(Arc::new);
    Ok(EventFunction::new(move |event: LambdaEvent<SqsEvent>| {
        let sync = sync.clone();
        async move {
            let Some(sync) = sync else {
                tracing::info!(records = event.payload.records.len(), "no FHIR server configured; settled unwritten");
                return Ok::<_, Error>(aws_lambda_events::sqs::SqsBatchResponse::default());
            };
            Ok(vcare_runtime::sqs::in_order(event.payload, "FHIR sync", |m| handle(&sync, m)).await)
        }
    }))
}

/// The event's clinic and the resource it changes, or why it is unusable.
fn target(body: &str) -> Result<Option<(String, Target)>, &'static str> {
    let event: Value = serde_json::from_str(body).map_err(|_| "not JSON")?;
    let (Some(kind), Some(subject), Some(clinic)) =
        (event["type"].as_str(), event["subject"].as_str(), event["clinicid"].as_str())
    else {
        return Err("not a CloudEvent with type, subject and clinicid");
    };
    Ok(Target::of(kind, subject).map(|t| (clinic.to_owned(), t)))
}

async fn handle(sync: &FhirSync, m: SqsMessage) -> Result<(), Error> {
    let body = m.body.as_deref().unwrap_or_default();
    let id = m.message_id.clone().unwrap_or_default();
    let refused = async |reason: &str| {
        let group = m.attributes.get("MessageGroupId").cloned().unwrap_or_else(|| "unknown".into());
        tracing::warn!(message_id = %id, reason, "dead-lettered: the FHIR server would refuse it again");
        sync.dead_letter(body, &group, &id, reason).await
    };
    let (clinic, target) = match target(body) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(()),
        Err(why) => return refused(why).await,
    };
    match sync.sync(&clinic, &target).await {
        Ok(Synced::Written(status)) => {
            tracing::info!(resource = target.resource_type(), status, "FHIR resource written");
            vcare_runtime::metrics::count("FhirWrites", &[("resource", target.resource_type())]);
            Ok(())
        }
        Ok(Synced::Nothing(why)) => {
            tracing::info!(resource = target.resource_type(), why, "nothing to write");
            Ok(())
        }
        Err(SyncError::Refused(why)) => refused(&why).await,
        Err(SyncError::Retry(why)) => Err(why.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_their_resource_or_say_why_not() {
        let ok = r#"{"type": "virtual_care.room.created", "subject": "rm_1", "clinicid": "c-1"}"#;
        assert_eq!(target(ok), Ok(Some(("c-1".into(), Target::Encounter { room_id: "rm_1".into() }))));
        let other = r#"{"type": "virtual_care.token.issued", "subject": "rm_1", "clinicid": "c-1"}"#;
        assert_eq!(target(other), Ok(None));
        assert!(target("{").is_err());
        assert!(target(r#"{"type": "virtual_care.room.created", "subject": "rm_1"}"#).is_err());
    }
}
