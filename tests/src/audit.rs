//! The audit trail as stored, for tests.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use vcare_care::audit::{Audit, ChainReport};
use vcare_domain::audit::AuditRecord;

use crate::TestStack;

pub fn audit_table(stack: &TestStack) -> String {
    stack.gateway.resource("AuditTable").unwrap().reference.clone()
}

fn audit(stack: &TestStack) -> Audit {
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    Audit {
        store: vcare_store::AuditStore::new(ddb, audit_table(stack), "unused"),
        clock: vcare_runtime::Clock::system(),
    }
}

/// The clinic's chain as it stands: its report, and its records in chain order.
pub async fn sealed(stack: &TestStack, clinic: &str) -> (ChainReport, Vec<AuditRecord>) {
    let mut records = Vec::new();
    let report = audit(stack).verify(clinic, |r| records.push(r.clone())).await.unwrap();
    (report, records)
}

/// The clinic's records in chain order, once the sequencer has sealed
/// every one written (within 30 s), the chain checked intact.
pub async fn chain(stack: &TestStack, clinic: &str) -> Vec<AuditRecord> {
    crate::eventually(Duration::from_secs(60), &format!("every record of {clinic} sealed"), || async {
        let mut records = Vec::new();
        // A read the busy endpoint refused is tried again.
        let report = audit(stack).verify(clinic, |r| records.push(r.clone())).await.ok()?;
        assert_eq!(report.broken, None, "the chain of {clinic} is broken");
        (report.awaiting_seal == 0).then_some(records)
    })
    .await
}

/// Seals every record written so far, as the sweep does once records
/// settle (for stacks without event sources, where no stream is read).
pub async fn seal_now(stack: &TestStack) {
    let sealer = vcare_care::audit_seal::Sealer::new(
        audit(stack).store,
        vcare_runtime::Clock::system(),
        chrono::Duration::zero(),
    );
    sealer.sweep().await.unwrap();
}

/// The clinic's records, sealed or not, oldest first (through the audit query).
pub async fn records(stack: &TestStack, clinic: &str) -> Vec<AuditRecord> {
    let (store, mut out, mut cursor) = (audit(stack).store, Vec::new(), None);
    loop {
        // Read again while the endpoint is still busy with a burst's tail.
        let page = crate::eventually(Duration::from_secs(30), "a page of the audit query", || async {
            store.query(clinic, &Default::default(), cursor.as_deref(), 100).await.ok()
        })
        .await;
        out.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out.reverse();
    out
}

/// Changes a stored record behind the trail's back (what no function's IAM
/// allows): `change` edits its JSON, and the item is put back in place.
pub async fn tamper(stack: &TestStack, record_id: &str, change: impl FnOnce(&mut serde_json::Value)) {
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let found = ddb
        .scan()
        .table_name(audit_table(stack))
        .filter_expression("kind = :k AND contains(#r, :id)")
        .expression_attribute_names("#r", "record")
        .expression_attribute_values(":k", AttributeValue::S("audit".into()))
        .expression_attribute_values(":id", AttributeValue::S(format!("\"{record_id}\"")))
        .send()
        .await
        .unwrap();
    let mut item = found.items.unwrap_or_default().pop().expect("the record is stored");
    let mut record: serde_json::Value = serde_json::from_str(item["record"].as_s().unwrap()).unwrap();
    change(&mut record);
    item.insert("record".into(), AttributeValue::S(record.to_string()));
    ddb.put_item().table_name(audit_table(stack)).set_item(Some(item)).send().await.unwrap();
}

/// A record as a function writes it: `actor` read `subject` (a room) of `clinic`.
pub fn access(clinic: &str, actor: &str, subject: &str, i: usize) -> AuditRecord {
    AuditRecord {
        clinic_id: clinic.into(),
        id: vcare_domain::audit::record_id(),
        at: chrono::Utc::now(),
        actor_id: actor.into(),
        actor_roles: vec!["doctor".into()],
        granted_by: None,
        action: "room.read".into(),
        subject_type: "room".into(),
        subject_id: subject.into(),
        outcome: vcare_domain::audit::Outcome::Allowed,
        request_id: format!("r-{i}"),
        source_ip: "203.0.113.7".into(),
    }
}

/// The audit trail of a stack by its name (a host process's, not a TestStack's).
pub async fn of_stack(stack: &str) -> Audit {
    let ddb = aws_sdk_dynamodb::Client::new(&crate::sdk().await);
    let store = vcare_store::AuditStore::new(ddb, format!("{stack}-AuditTable"), format!("{stack}-Table"));
    Audit { store, clock: vcare_runtime::Clock::system() }
}
