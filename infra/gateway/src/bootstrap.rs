//! Makes what infra/template.yaml declares — tables, queues, keys, buckets —
//! on the AWS endpoint, idempotently, and records what each answers to `Ref`
//! and `Fn::GetAtt`. Read from the template itself so the two cannot drift.

use std::collections::HashMap;

use aws_sdk_dynamodb::types as ddb;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use vcare_aws::SdkConfig;

use crate::GatewayError;
use crate::resolve::{Physical, Stack};
use crate::template::Template;

fn aws<E: std::error::Error + Send + Sync + 'static>(what: String) -> impl FnOnce(E) -> GatewayError {
    move |e| GatewayError::Aws(format!("{what}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
}

/// Creates every resource the gateway knows how to make and fills
/// `stack.physical` for all of them (resources it does not make, such as log
/// groups or alarms, answer `Ref` with their physical name).
pub async fn bootstrap(template: &Template, stack: &mut Stack, sdk: &SdkConfig) -> Result<(), GatewayError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let kms = aws_sdk_kms::Client::new(sdk);
    let s3 = aws_sdk_s3::Client::new(sdk);

    for (id, r) in template.of_type("AWS::KMS::Key") {
        let physical = ensure_key(&kms, stack, id, &r["Properties"]).await?;
        stack.physical.insert(id.to_owned(), physical);
    }
    for (id, r) in template.of_type("AWS::DynamoDB::Table") {
        let physical = ensure_table(&dynamodb, stack, id, &r["Properties"]).await?;
        stack.physical.insert(id.to_owned(), physical);
    }
    // Dead-letter queues first: a redrive policy names its DLQ's ARN.
    let mut queues: Vec<_> = template.of_type("AWS::SQS::Queue").collect();
    queues.sort_by_key(|(_, r)| r["Properties"].get("RedrivePolicy").is_some());
    for (id, r) in queues {
        let physical = ensure_queue(&sqs, stack, id, &r["Properties"]).await?;
        stack.physical.insert(id.to_owned(), physical);
    }
    // Topics, then what subscribes to them (queues are made above).
    let sns = aws_sdk_sns::Client::new(sdk);
    for (id, r) in template.of_type("AWS::SNS::Topic") {
        let physical = ensure_topic(&sns, stack, id, &r["Properties"]).await?;
        stack.physical.insert(id.to_owned(), physical);
    }
    for (id, r) in template.of_type("AWS::SNS::Subscription") {
        let physical = ensure_subscription(&sns, stack, id, &r["Properties"]).await?;
        stack.physical.insert(id.to_owned(), physical);
    }
    for (id, r) in template.of_type("AWS::S3::Bucket") {
        let physical = ensure_bucket(&s3, stack, id, &r["Properties"]).await?;
        stack.physical.insert(id.to_owned(), physical);
    }
    let ses = aws_sdk_sesv2::Client::new(sdk);
    for (id, r) in template.of_type("AWS::SES::EmailIdentity") {
        let identity = stack.resolve_string(&r["Properties"]["EmailIdentity"])?;
        if let Err(e) = ses.create_email_identity().email_identity(&identity).send().await {
            let exists = e.as_service_error().is_some_and(|s| s.is_already_exists_exception());
            if !exists {
                return Err(aws(format!("email identity {id}"))(e));
            }
        }
        stack.physical.insert(id.to_owned(), Physical { reference: identity, attrs: HashMap::new() });
    }
    for (id, r) in template.resources() {
        if stack.physical.contains_key(id) {
            continue;
        }
        let name = stack.physical_name(id);
        let arn = match r["Type"].as_str() {
            Some("AWS::Serverless::Function") => stack.arn("lambda", &format!("function:{name}")),
            _ => stack.arn("local", &name),
        };
        stack.physical.insert(id.to_owned(), Physical { reference: name, attrs: HashMap::from([("Arn".into(), arn)]) });
    }
    Ok(())
}

async fn ensure_key(
    kms: &aws_sdk_kms::Client,
    stack: &Stack,
    id: &str,
    props: &Value,
) -> Result<Physical, GatewayError> {
    let alias = format!("alias/{}", stack.physical_name(id));
    let existing = kms.describe_key().key_id(&alias).send().await;
    let metadata = match existing.ok().and_then(|d| d.key_metadata) {
        Some(m) => m,
        None => {
            let spec = props["KeySpec"].as_str().unwrap_or("SYMMETRIC_DEFAULT");
            let usage = props["KeyUsage"].as_str().unwrap_or("ENCRYPT_DECRYPT");
            let created = kms
                .create_key()
                .key_spec(spec.into())
                .key_usage(usage.into())
                .description(format!("{} (local)", stack.physical_name(id)))
                .send()
                .await
                .map_err(aws(format!("create key {id}")))?;
            let m = created.key_metadata.ok_or_else(|| GatewayError::Aws(format!("create key {id}: no metadata")))?;
            kms.create_alias()
                .alias_name(&alias)
                .target_key_id(&m.key_id)
                .send()
                .await
                .map_err(aws(format!("alias {id}")))?;
            m
        }
    };
    let arn = metadata.arn.clone().unwrap_or_default();
    Ok(Physical {
        reference: metadata.key_id.clone(),
        attrs: HashMap::from([("Arn".into(), arn), ("KeyId".into(), metadata.key_id)]),
    })
}

fn key_schema(items: &Value) -> Result<Vec<ddb::KeySchemaElement>, GatewayError> {
    items
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            ddb::KeySchemaElement::builder()
                .attribute_name(k["AttributeName"].as_str().unwrap_or_default())
                .key_type(k["KeyType"].as_str().unwrap_or_default().into())
                .build()
                .map_err(|e| GatewayError::Template(format!("KeySchema: {e}")))
        })
        .collect()
}

async fn ensure_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    stack: &Stack,
    id: &str,
    props: &Value,
) -> Result<Physical, GatewayError> {
    let props = stack.resolve(props)?;
    let name = props["TableName"].as_str().map(str::to_owned).unwrap_or_else(|| stack.physical_name(id));
    let described = match dynamodb.describe_table().table_name(&name).send().await {
        Ok(d) => d.table,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => None,
        Err(e) => return Err(aws(format!("describe table {id}"))(e)),
    };
    let table = match described {
        Some(t) => t,
        None => {
            let mut create = dynamodb
                .create_table()
                .table_name(&name)
                .billing_mode(ddb::BillingMode::PayPerRequest)
                .set_key_schema(Some(key_schema(&props["KeySchema"])?));
            for a in props["AttributeDefinitions"].as_array().into_iter().flatten() {
                create = create.attribute_definitions(
                    ddb::AttributeDefinition::builder()
                        .attribute_name(a["AttributeName"].as_str().unwrap_or_default())
                        .attribute_type(a["AttributeType"].as_str().unwrap_or_default().into())
                        .build()
                        .map_err(|e| GatewayError::Template(format!("AttributeDefinitions: {e}")))?,
                );
            }
            for g in props["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
                let projection = ddb::Projection::builder()
                    .projection_type(g["Projection"]["ProjectionType"].as_str().unwrap_or("ALL").into())
                    .set_non_key_attributes(
                        g["Projection"]["NonKeyAttributes"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()),
                    )
                    .build();
                create = create.global_secondary_indexes(
                    ddb::GlobalSecondaryIndex::builder()
                        .index_name(g["IndexName"].as_str().unwrap_or_default())
                        .set_key_schema(Some(key_schema(&g["KeySchema"])?))
                        .projection(projection)
                        .build()
                        .map_err(|e| GatewayError::Template(format!("GlobalSecondaryIndexes: {e}")))?,
                );
            }
            if let Some(view) = props["StreamSpecification"]["StreamViewType"].as_str() {
                create = create.stream_specification(
                    ddb::StreamSpecification::builder()
                        .stream_enabled(true)
                        .stream_view_type(view.into())
                        .build()
                        .map_err(|e| GatewayError::Template(format!("StreamSpecification: {e}")))?,
                );
            }
            let created = create.send().await.map_err(aws(format!("create table {id}")))?;
            if let Some(ttl) = props["TimeToLiveSpecification"].as_object().filter(|t| t["Enabled"] == true) {
                dynamodb
                    .update_time_to_live()
                    .table_name(&name)
                    .time_to_live_specification(
                        ddb::TimeToLiveSpecification::builder()
                            .attribute_name(ttl["AttributeName"].as_str().unwrap_or_default())
                            .enabled(true)
                            .build()
                            .map_err(|e| GatewayError::Template(format!("TimeToLiveSpecification: {e}")))?,
                    )
                    .send()
                    .await
                    .map_err(aws(format!("time to live {id}")))?;
            }
            created.table_description.ok_or_else(|| GatewayError::Aws(format!("create table {id}: no description")))?
        }
    };
    let mut attrs = HashMap::from([("Arn".to_owned(), table.table_arn.clone().unwrap_or_default())]);
    if let Some(stream) = table.latest_stream_arn {
        attrs.insert("StreamArn".into(), stream);
    }
    Ok(Physical { reference: name, attrs })
}

/// Whether a topic or queue is FIFO, and its name: the template's, or one
/// made from the stack and logical id (with `.fifo`, as SNS and SQS want).
fn physical_name(stack: &Stack, id: &str, props: &Value, name: &str, fifo: &str) -> (bool, String) {
    let fifo = props[fifo] == true;
    let name = props[name].as_str().map(str::to_owned).unwrap_or_else(|| {
        let base = stack.physical_name(id);
        if fifo { format!("{base}.fifo") } else { base }
    });
    (fifo, name)
}

/// A topic as the template declares it (a FIFO topic's name ends `.fifo`);
/// `Ref` is its ARN, as in CloudFormation.
async fn ensure_topic(
    sns: &aws_sdk_sns::Client,
    stack: &Stack,
    id: &str,
    props: &Value,
) -> Result<Physical, GatewayError> {
    let props = stack.resolve(props)?;
    let (fifo, name) = physical_name(stack, id, &props, "TopicName", "FifoTopic");
    let mut create = sns.create_topic().name(&name);
    if fifo {
        create = create.attributes("FifoTopic", "true");
    }
    if let Some(v) = props.get("ContentBasedDeduplication") {
        create = create.attributes("ContentBasedDeduplication", stack.resolve_string(v)?);
    }
    // Creating an existing topic with the same attributes answers its ARN.
    let arn = create.send().await.map_err(aws(format!("create topic {id}")))?.topic_arn.unwrap_or_default();
    Ok(Physical {
        reference: arn.clone(),
        attrs: HashMap::from([("TopicArn".into(), arn), ("TopicName".into(), name)]),
    })
}

/// A subscription with its filter policy and raw delivery; made once (an
/// existing one of the same topic and endpoint has its attributes set again).
async fn ensure_subscription(
    sns: &aws_sdk_sns::Client,
    stack: &Stack,
    id: &str,
    props: &Value,
) -> Result<Physical, GatewayError> {
    let props = stack.resolve(props)?;
    let (topic, endpoint) = (stack.resolve_string(&props["TopicArn"])?, stack.resolve_string(&props["Endpoint"])?);
    let protocol = props["Protocol"].as_str().unwrap_or("sqs").to_owned();
    let mut attributes: HashMap<String, String> = HashMap::new();
    if let Some(policy) = props.get("FilterPolicy") {
        attributes.insert("FilterPolicy".into(), policy.to_string());
        let scope = props["FilterPolicyScope"].as_str().unwrap_or("MessageAttributes");
        attributes.insert("FilterPolicyScope".into(), scope.into());
    }
    if let Some(raw) = props.get("RawMessageDelivery") {
        attributes.insert("RawMessageDelivery".into(), stack.resolve_string(raw)?);
    }
    let existing = sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .map_err(aws(format!("list subscriptions {id}")))?
        .subscriptions
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.endpoint.as_deref() == Some(endpoint.as_str()))
        .and_then(|s| s.subscription_arn);
    let arn = match existing {
        Some(arn) => {
            for (name, value) in &attributes {
                sns.set_subscription_attributes()
                    .subscription_arn(&arn)
                    .attribute_name(name)
                    .attribute_value(value)
                    .send()
                    .await
                    .map_err(aws(format!("update subscription {id}")))?;
            }
            arn
        }
        None => sns
            .subscribe()
            .topic_arn(&topic)
            .protocol(protocol)
            .endpoint(&endpoint)
            .set_attributes(Some(attributes))
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(aws(format!("subscribe {id}")))?
            .subscription_arn
            .unwrap_or_default(),
    };
    Ok(Physical { reference: arn, attrs: HashMap::new() })
}

async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    stack: &Stack,
    id: &str,
    props: &Value,
) -> Result<Physical, GatewayError> {
    let props = stack.resolve(props)?;
    let (fifo, name) = physical_name(stack, id, &props, "QueueName", "FifoQueue");
    let mut attributes: HashMap<QueueAttributeName, String> = HashMap::new();
    for (prop, attr) in [
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
        ("DelaySeconds", QueueAttributeName::DelaySeconds),
        ("ReceiveMessageWaitTimeSeconds", QueueAttributeName::ReceiveMessageWaitTimeSeconds),
        ("ContentBasedDeduplication", QueueAttributeName::ContentBasedDeduplication),
    ] {
        if let Some(v) = props.get(prop) {
            attributes.insert(attr, stack.resolve_string(v)?);
        }
    }
    if let Some(redrive) = props.get("RedrivePolicy") {
        attributes.insert(QueueAttributeName::RedrivePolicy, redrive.to_string());
    }
    let url = match sqs.get_queue_url().queue_name(&name).send().await {
        Ok(found) => {
            let url = found.queue_url.unwrap_or_default();
            if !attributes.is_empty() {
                sqs.set_queue_attributes()
                    .queue_url(&url)
                    .set_attributes(Some(attributes))
                    .send()
                    .await
                    .map_err(aws(format!("update queue {id}")))?;
            }
            url
        }
        Err(_) => {
            if fifo {
                attributes.insert(QueueAttributeName::FifoQueue, "true".into());
            }
            sqs.create_queue()
                .queue_name(&name)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(aws(format!("create queue {id}")))?
                .queue_url
                .unwrap_or_default()
        }
    };
    let arn = stack.arn("sqs", &name);
    Ok(Physical {
        reference: url.clone(),
        attrs: HashMap::from([("Arn".into(), arn), ("QueueName".into(), name), ("QueueUrl".into(), url)]),
    })
}

async fn ensure_bucket(
    s3: &aws_sdk_s3::Client,
    stack: &Stack,
    id: &str,
    props: &Value,
) -> Result<Physical, GatewayError> {
    use aws_sdk_s3::types as s3t;
    let props = stack.resolve(props)?;
    let name =
        props["BucketName"].as_str().map(str::to_owned).unwrap_or_else(|| stack.physical_name(id).to_lowercase());
    let mut create = s3.create_bucket().bucket(&name);
    if props["ObjectLockEnabled"].as_bool() == Some(true) {
        create = create.object_lock_enabled_for_bucket(true);
    }
    if stack.region != "us-east-1" {
        create = create.create_bucket_configuration(
            s3t::CreateBucketConfiguration::builder().location_constraint(stack.region.as_str().into()).build(),
        );
    }
    if let Err(e) = create.send().await {
        let owned = e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you());
        if !owned {
            return Err(aws(format!("create bucket {id}"))(e));
        }
    }
    if let Some(rule) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"].get(0) {
        let default = &rule["ServerSideEncryptionByDefault"];
        let by_default = s3t::ServerSideEncryptionByDefault::builder()
            .sse_algorithm(default["SSEAlgorithm"].as_str().unwrap_or("aws:kms").into())
            .set_kms_master_key_id(default["KMSMasterKeyID"].as_str().map(str::to_owned))
            .build()
            .map_err(|e| GatewayError::Template(format!("BucketEncryption: {e}")))?;
        let config = s3t::ServerSideEncryptionConfiguration::builder()
            .rules(
                s3t::ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(by_default)
                    .set_bucket_key_enabled(rule["BucketKeyEnabled"].as_bool())
                    .build(),
            )
            .build()
            .map_err(|e| GatewayError::Template(format!("BucketEncryption: {e}")))?;
        s3.put_bucket_encryption()
            .bucket(&name)
            .server_side_encryption_configuration(config)
            .send()
            .await
            .map_err(aws(format!("bucket encryption {id}")))?;
    }
    if props["VersioningConfiguration"]["Status"] == "Enabled" {
        s3.put_bucket_versioning()
            .bucket(&name)
            .versioning_configuration(
                s3t::VersioningConfiguration::builder().status(s3t::BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .map_err(aws(format!("bucket versioning {id}")))?;
    }
    if let Some(block) = props["PublicAccessBlockConfiguration"].as_object() {
        let flag = |k: &str| block.get(k).and_then(Value::as_bool);
        s3.put_public_access_block()
            .bucket(&name)
            .public_access_block_configuration(
                s3t::PublicAccessBlockConfiguration::builder()
                    .set_block_public_acls(flag("BlockPublicAcls"))
                    .set_block_public_policy(flag("BlockPublicPolicy"))
                    .set_ignore_public_acls(flag("IgnorePublicAcls"))
                    .set_restrict_public_buckets(flag("RestrictPublicBuckets"))
                    .build(),
            )
            .send()
            .await
            .map_err(aws(format!("public access block {id}")))?;
    }
    Ok(Physical {
        reference: name.clone(),
        attrs: HashMap::from([
            ("Arn".into(), format!("arn:aws:s3:::{name}")),
            ("DomainName".into(), format!("{name}.s3.amazonaws.com")),
            ("RegionalDomainName".into(), format!("{name}.s3.{}.amazonaws.com", stack.region)),
        ]),
    })
}

/// Encrypts a secret under the stack's key `key_id` (logical id) with the
/// encryption context `vcare:purpose=<purpose>`; base64 ciphertext.
pub async fn encrypt_secret(
    stack: &Stack,
    sdk: &SdkConfig,
    key_id: &str,
    purpose: &str,
    plaintext: &str,
) -> Result<String, GatewayError> {
    let key = stack
        .physical
        .get(key_id)
        .ok_or_else(|| GatewayError::Template(format!("secrets need the KMS key {key_id} in the template")))?;
    vcare_crypto::encrypt_secret(&aws_sdk_kms::Client::new(sdk), &key.reference, plaintext.as_bytes(), purpose)
        .await
        .map_err(|e| GatewayError::Aws(format!("encrypt {purpose}: {e}")))
}
