//! Whether the parts vcare's requests need answer: DynamoDB, SQS and KMS
//! each get one cheap question (the health function's readiness).

use vcare_aws::SdkConfig;
use vcare_runtime::{ConfigError, Env};

pub struct Readiness {
    table: String,
    queue_url: String,
    key_id: String,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    kms: aws_sdk_kms::Client,
}

impl Readiness {
    /// `TABLE_NAME`, `DISPATCH_QUEUE_URL` and `DATA_KEY_ID`: what the
    /// notification path needs.
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.required("TABLE_NAME")?,
            queue_url: env.required("DISPATCH_QUEUE_URL")?,
            key_id: env.required("DATA_KEY_ID")?,
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
        })
    }

    /// Asks each dependency one cheap question, concurrently; returns the
    /// names of those that did not answer.
    pub async fn unready(&self) -> Vec<&'static str> {
        let (table, queue, key) = tokio::join!(
            self.dynamodb.describe_table().table_name(&self.table).send(),
            self.sqs
                .get_queue_attributes()
                .queue_url(&self.queue_url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send(),
            self.kms.describe_key().key_id(&self.key_id).send(),
        );
        let mut failed = Vec::new();
        if let Err(e) = table {
            tracing::warn!(dependency = "dynamodb", error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "readiness check failed");
            failed.push("dynamodb");
        }
        if let Err(e) = queue {
            tracing::warn!(dependency = "sqs", error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "readiness check failed");
            failed.push("sqs");
        }
        if let Err(e) = key {
            tracing::warn!(dependency = "kms", error = %aws_sdk_kms::error::DisplayErrorContext(&e), "readiness check failed");
            failed.push("kms");
        }
        failed
    }
}
