//! The audit trail's export: every record as it is written, and every
//! block of the chain as it is sealed (the audit table's stream, INSERTs
//! of both), becomes an object in the audit bucket under S3 Object Lock in
//! **compliance** mode until its retention ends (`AUDIT_RETENTION_DAYS`, 6
//! years by default): no one — not the account's root — can delete the
//! version or shorten its lock, and the bucket alone verifies the chain.
//! Keys: `audit/<clinic>/records/<id>.json` and
//! `audit/<clinic>/chain/<first seq>.json`, so an item exported twice (a
//! retried batch) is the same object again, one more locked version of
//! the same bytes.

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_s3::primitives::{ByteStream, DateTime as S3Time};
use aws_sdk_s3::types::ObjectLockMode;
use chrono::Duration;
use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_domain::audit::{AuditRecord, Block};
use vcare_runtime::{Env, Error};
use vcare_store::AuditStore;

/// Six years (HIPAA keeps documentation that long), in days.
pub const DEFAULT_RETENTION_DAYS: i64 = 2190;

pub struct AuditExport {
    s3: aws_sdk_s3::Client,
    bucket: String,
    retain: Duration,
}

impl AuditExport {
    /// `AUDIT_BUCKET`, `AUDIT_RETENTION_DAYS` (1 to 36,500; 2,190).
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, Error> {
        let days = env.bounded("AUDIT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1, 36_500)?;
        Ok(Self {
            s3: aws_sdk_s3::Client::new(sdk),
            bucket: env.required("AUDIT_BUCKET")?,
            retain: Duration::days(days),
        })
    }

    /// Where a record is kept in the bucket.
    pub fn record_key(r: &AuditRecord) -> String {
        format!("audit/{}/records/{}.json", r.clinic_id, r.id)
    }

    /// Where a block of the chain is kept in the bucket.
    pub fn block_key(b: &Block) -> String {
        format!("audit/{}/chain/{:020}.json", b.clinic_id, b.first())
    }

    /// Puts one object, locked until its retention ends (counted from
    /// `at`, the access or the first access it seals, not the export).
    async fn put(&self, key: String, body: Vec<u8>, at: DateTime<Utc>) -> Result<(), Error> {
        let until = S3Time::from_secs((at + self.retain).timestamp());
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(until)
            .send()
            .await
            .map_err(|e| {
                format!("the audit bucket refused an object: {}", aws_sdk_s3::error::DisplayErrorContext(e))
            })?;
        Ok(())
    }

    /// Exports what a stream item holds: a record or a block.
    async fn export(&self, item: &vcare_store::items::Item) -> Result<(), Error> {
        if let Some(r) = AuditStore::record_of(item)? {
            return self.put(Self::record_key(&r), serde_json::to_vec(&r)?, r.at).await;
        }
        if let Some(b) = AuditStore::block_in(item)? {
            let at = b.entries.first().map_or_else(Utc::now, |e| e.at);
            return self.put(Self::block_key(&b), serde_json::to_vec(&b)?, at).await;
        }
        Ok(())
    }

    /// Exports a stream batch in order; at the first record that cannot be
    /// exported, stops and reports it (Lambda resumes the shard there).
    pub async fn stream(&self, event: StreamEvent) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for record in event.records {
            let sequence = record.change.sequence_number.clone().unwrap_or_default();
            let item: vcare_store::items::Item = record.change.new_image.into();
            let done = self.export(&item).await;
            if let Err(e) = done {
                tracing::warn!(error = %e, "exporting stopped; the rest of the batch will come again");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence);
                response.batch_item_failures.push(failure);
                break;
            }
            vcare_runtime::metrics::count("AuditItemsExported", &[]);
        }
        response
    }
}
