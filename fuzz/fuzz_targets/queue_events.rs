//! What the queue and stream triggers hand over: Lambda's SQS event, whose
//! bodies are dispatch messages or appointment events, and the table's
//! stream event, whose new images the relay reads as outbox records.
#![no_main]

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::sqs::SqsEvent;
use libfuzzer_sys::fuzz_target;
use vcare_domain::appointment::AppointmentEvent;
use vcare_domain::notification::DispatchMessage;
use vcare_store::OutboxRecord;
use vcare_store::items::Item;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(batch) = serde_json::from_value::<SqsEvent>(event.clone()) {
        for body in batch.records.iter().filter_map(|r| r.body.as_deref()) {
            let _ = serde_json::from_str::<DispatchMessage>(body);
            let _ = serde_json::from_str::<AppointmentEvent>(body);
        }
    }
    if let Ok(stream) = serde_json::from_value::<StreamEvent>(event) {
        for record in stream.records {
            let item: Item = record.change.new_image.into();
            if let Some(outbox) = OutboxRecord::from_item(&item) {
                let _ = outbox.written_at();
            }
        }
    }
});
