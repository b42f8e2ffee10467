//! The domain event catalogue (events/catalogue): one JSON Schema per
//! event type, checked against every event the tests see.

use serde_json::Value;

/// Checks `event` (CloudEvents JSON) against its type's schema; an event
/// type without a schema is an error too.
pub fn validate(event: &Value) -> Result<(), String> {
    let kind = event["type"].as_str().ok_or("an event without a type")?;
    let path = crate::root().join("events/catalogue").join(format!("{kind}.schema.json"));
    let text = std::fs::read_to_string(&path).map_err(|_| format!("no schema for {kind}"))?;
    let schema: Value = serde_json::from_str(&text).map_err(|e| format!("{kind}: schema: {e}"))?;
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| format!("{kind}: schema: {e}"))?;
    let errors: Vec<String> = validator.iter_errors(event).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    if errors.is_empty() { Ok(()) } else { Err(format!("{kind}: {}", errors.join("; "))) }
}
