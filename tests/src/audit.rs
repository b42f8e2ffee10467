//! The audit trail as stored, for tests.

use vcare_domain::audit::AuditRecord;

use crate::TestStack;

pub fn audit_table(stack: &TestStack) -> String {
    stack.gateway.resource("AuditTable").unwrap().reference.clone()
}

/// The clinic's records in chain order, as stored.
pub async fn chain(stack: &TestStack, clinic: &str) -> Vec<AuditRecord> {
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let store = vcare_store::AuditStore::new(ddb, audit_table(stack), "unused");
    let mut out = Vec::new();
    loop {
        let page = store.chain(clinic, out.last().map_or(0, |r: &AuditRecord| r.seq), 100).await.unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}
