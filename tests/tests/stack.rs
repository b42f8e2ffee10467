//! vcare's own template on the local gateway: resource bootstrap, the health
//! function, and every sample event in events/.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName as Q;
use serde_json::{Value, json};
use vcare_local::{Gateway, Registry};
use vcare_tests::{TempDir, TestStack, root};

#[tokio::test]
async fn bootstrap_makes_what_the_template_declares_and_a_second_start_reuses_it() {
    let stack = TestStack::start().await;
    let sdk = stack.sdk.clone();
    let res = |id: &str| stack.gateway.resource(id).unwrap_or_else(|| panic!("{id} bootstrapped")).clone();

    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = dynamodb.describe_table().table_name(&res("Table").reference).send().await.unwrap().table.unwrap();
    let keys: Vec<_> = table.key_schema().iter().map(|k| k.attribute_name().to_owned()).collect();
    assert_eq!(keys, ["pk", "sk"]);
    assert_eq!(table.global_secondary_indexes()[0].index_name(), Some("gsi1"));
    assert_eq!(
        table.stream_specification().and_then(|s| s.stream_view_type()).map(|v| v.as_str()),
        Some("NEW_AND_OLD_IMAGES")
    );
    assert_eq!(res("Table").attrs["StreamArn"], table.latest_stream_arn.clone().unwrap());
    let ttl = dynamodb.describe_time_to_live().table_name(&res("Table").reference).send().await.unwrap();
    assert_eq!(ttl.time_to_live_description.and_then(|t| t.attribute_name), Some("expiresAt".into()));

    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for (queue, dlq, max) in [
        ("DispatchQueue", "DispatchDLQ", 5),
        ("AppointmentEventsQueue", "AppointmentEventsDLQ", 5),
        ("DomainEventsQueue", "DomainEventsDLQ", 10),
    ] {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&res(queue).reference)
            .attribute_names(Q::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        let redrive: Value = serde_json::from_str(&attrs[&Q::RedrivePolicy]).unwrap();
        assert_eq!(redrive["deadLetterTargetArn"], res(dlq).attrs["Arn"], "{queue}");
        assert_eq!(redrive["maxReceiveCount"].to_string().trim_matches('"'), max.to_string(), "{queue}");
    }
    assert!(res("DomainEventsQueue").reference.ends_with(".fifo"));
    let fifo = sqs
        .get_queue_attributes()
        .queue_url(&res("DomainEventsQueue").reference)
        .attribute_names(Q::FifoQueue)
        .send()
        .await
        .unwrap();
    assert_eq!(fifo.attributes.unwrap()[&Q::FifoQueue], "true");

    let kms = aws_sdk_kms::Client::new(&sdk);
    let data = kms.describe_key().key_id(&res("DataKey").reference).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(data.key_usage().map(|u| u.as_str()), Some("ENCRYPT_DECRYPT"));
    let hmac = kms.describe_key().key_id(&res("DlrSigningKey").reference).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(
        (hmac.key_spec().map(|s| s.as_str()), hmac.key_usage().map(|u| u.as_str())),
        (Some("HMAC_256"), Some("GENERATE_VERIFY_MAC"))
    );
    // The keys work: a MAC made with the DLR key verifies.
    let mac = kms
        .generate_mac()
        .key_id(&res("DlrSigningKey").reference)
        .mac_algorithm("HMAC_SHA_256".into())
        .message(aws_sdk_kms::primitives::Blob::new("ref-1"))
        .send()
        .await
        .unwrap();
    let ok = kms
        .verify_mac()
        .key_id(&res("DlrSigningKey").reference)
        .mac_algorithm("HMAC_SHA_256".into())
        .message(aws_sdk_kms::primitives::Blob::new("ref-1"))
        .mac(mac.mac.unwrap())
        .send()
        .await
        .unwrap();
    assert!(ok.mac_valid);

    let s3 = aws_sdk_s3::Client::new(&sdk);
    let bucket = res("ImageBucket").reference;
    assert_eq!(bucket, bucket.to_lowercase());
    let enc = s3.get_bucket_encryption().bucket(&bucket).send().await.unwrap();
    let config = enc.server_side_encryption_configuration.unwrap();
    let rule = &config.rules()[0];
    let by_default = rule.apply_server_side_encryption_by_default().unwrap();
    assert_eq!(by_default.sse_algorithm().as_str(), "aws:kms");
    assert_eq!(by_default.kms_master_key_id(), Some(res("DataKey").attrs["Arn"].as_str()));
    let block =
        s3.get_public_access_block().bucket(&bucket).send().await.unwrap().public_access_block_configuration.unwrap();
    assert_eq!(block.block_public_acls(), Some(true));
    assert_eq!(block.restrict_public_buckets(), Some(true));

    // The functions see the resources through their environment.
    let health = stack.gateway.function("HealthFunction").unwrap();
    assert_eq!(health.def.environment["TABLE_NAME"], res("Table").reference);
    assert_eq!(health.def.environment["DISPATCH_QUEUE_URL"], res("DispatchQueue").reference);
    assert_eq!(health.def.environment["DATA_KEY_ID"], res("DataKey").reference);

    // A second start on the same stack finds everything and makes nothing new.
    let keys = TempDir::new();
    let config = vcare_tests::config(root().join("infra/template.yaml"), &stack.gateway.stack.name, &keys.0);
    let again = Gateway::start(config, &Registry::vcare(), &sdk).await.expect("second start");
    for id in ["Table", "DispatchQueue", "DispatchDLQ", "DomainEventsQueue", "DataKey", "DlrSigningKey", "ImageBucket"]
    {
        assert_eq!(again.resource(id).unwrap().reference, res(id).reference, "{id}");
    }
    again.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn health_answers_live_and_ready() {
    let stack = TestStack::start().await;
    let (status, content_type, body) = stack.get("/health", None).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    assert!(content_type.starts_with("application/json"));
    let (status, _, body) = stack.get("/health/ready", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"], json!({"dynamodb": "ok", "sqs": "ok", "kms": "ok"}));
    stack.stop().await;
}

#[tokio::test]
async fn readiness_names_each_dependency_that_does_not_answer() {
    let sdk = vcare_tests::sdk().await;
    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("events/health/ready.json")).unwrap()).unwrap();
    let env = |table: &str, queue: &str, key: &str| {
        vcare_runtime::Env::from_map(HashMap::from([
            ("TABLE_NAME".into(), table.into()),
            ("DISPATCH_QUEUE_URL".into(), queue.into()),
            ("DATA_KEY_ID".into(), key.into()),
            ("JITSI_DOMAIN".into(), "meet.vcare.local".into()),
        ]))
    };
    let stack = TestStack::start().await;
    let r = |id: &str| stack.gateway.resource(id).unwrap().reference.clone();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let missing_queue = format!("{endpoint}/123456789012/no-such-queue");
    let cases = [
        (env("no-such-table", &r("DispatchQueue"), &r("DataKey")), "dynamodb"),
        (env(&r("Table"), &missing_queue, &r("DataKey")), "sqs"),
        (env(&r("Table"), &r("DispatchQueue"), "alias/no-such-key"), "kms"),
        (env("no-such-table", &missing_queue, "alias/no-such-key"), "dynamodb, sqs, kms"),
    ];
    use vcare_runtime::Function;
    for (env, failed) in cases {
        let function = health::function(&env, &sdk).await.unwrap();
        let response = function.invoke(event.clone(), Default::default()).await.unwrap();
        assert_eq!(response["statusCode"], 503, "{failed}");
        assert_eq!(response["headers"]["content-type"], "application/problem+json");
        let problem: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(problem["status"], 503);
        assert_eq!(problem["detail"], format!("not answering: {failed}"));
    }
    // A missing setting fails the cold start, naming it.
    let err = health::function(&vcare_runtime::Env::default(), &sdk).await.err().unwrap();
    assert_eq!(err.to_string(), "setting TABLE_NAME is missing");
    stack.stop().await;
}

/// The ids the samples in events/ use; the test swaps in the room it made.
const SAMPLE_ROOM: &str = "rm_samplesampleroom000000000";
const SAMPLE_JITSI_ROOM: &str = "samplejitsiroomsamplejitsiroom22";
const SAMPLE_NOTIFICATION: &str = "ntf_samplesamplesamplesample00";

/// The order in which the samples make a consultation's story: created,
/// looked at, joined, used, tracked by Jitsi, ended.
const SAMPLE_ORDER: &[&str] = &[
    "health",
    "room-create",
    "room-get",
    "waiting-room",
    "recordings",
    "dial-in",
    "token-issue",
    "join-links",
    "issue-report",
    "image-share",
    "history",
    "audit",
    "audit-export",
    "audit-seal",
    "jitsi-reservations",
    "jitsi-events",
    "openvidu-events",
    "room-end",
    "templates",
    "notification-create",
    "schedules",
    "dispatch",
    "notification-get",
    "preferences",
    "dlr-callback",
    "dlr-sweep",
    "outbox-relay",
    "fhir-sync",
    "webhooks",
    "webhook-deliver",
    "appointment-events",
    "reminder-scheduler",
];

/// The Twilio sample's receipt is signed as Twilio would sign it for this
/// deployment's public URL.
const SAMPLE_PUBLIC_BASE: &str = "https://api.vcare.example";
const SAMPLE_TWILIO_TOKEN: &str = "sample-twilio-auth-token";

#[tokio::test]
async fn every_sample_event_runs_through_its_handler() {
    // Queues and streams are not polled: the samples play the workers' part.
    let stack = TestStack::start_with(root().join("infra/template.yaml"), &Registry::vcare(), |c| {
        c.event_sources = false;
        c.parameters.insert("DlrCallbackBaseUrl".into(), SAMPLE_PUBLIC_BASE.into());
        c.secrets.insert("TwilioAuthTokenCiphertext".into(), SAMPLE_TWILIO_TOKEN.into());
        // The sample room's clinic has dial-in, so that the mapper finds its PIN.
        c.parameters.insert("ClinicDialInNumbers".into(), "clinic-1=AF:+93201234567".into());
    })
    .await;
    let template = vcare_local::Template::load(&root().join("infra/template.yaml")).unwrap();
    let binaries: HashMap<String, String> = template
        .of_type("AWS::Serverless::Function")
        .map(|(id, f)| (f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned(), id.to_owned()))
        .collect();
    for binary in binaries.keys() {
        assert!(SAMPLE_ORDER.contains(&binary.as_str()), "{binary} is missing from SAMPLE_ORDER");
    }
    let (mut room_id, mut jitsi_room) = (SAMPLE_ROOM.to_owned(), SAMPLE_JITSI_ROOM.to_owned());
    let mut notification_id = SAMPLE_NOTIFICATION.to_owned();
    let mut ran = 0;
    for binary in SAMPLE_ORDER {
        let id = &binaries[*binary];
        let dir = root().join("events").join(binary);
        let mut samples: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|_| panic!("events/{binary}/ has the samples of {id}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        samples.sort();
        assert!(!samples.is_empty(), "events/{binary}/ has no sample");
        let deployed = stack.gateway.function(id).unwrap();
        for path in samples {
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace(SAMPLE_ROOM, &room_id)
                .replace(SAMPLE_JITSI_ROOM, &jitsi_room)
                .replace(SAMPLE_NOTIFICATION, &notification_id);
            let mut event: Value = serde_json::from_str(&text).unwrap();
            if *binary == "room-create" {
                // A consultation starting in 5 minutes, so its join window is open.
                let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
                let start = chrono::Utc::now() + chrono::Duration::minutes(5);
                body["scheduledStart"] = json!(start.to_rfc3339());
                body["scheduledEnd"] = json!((start + chrono::Duration::minutes(30)).to_rfc3339());
                event["body"] = json!(body.to_string());
            }
            if *binary == "dlr-callback" {
                let url = format!(
                    "{SAMPLE_PUBLIC_BASE}{}?{}",
                    event["rawPath"].as_str().unwrap(),
                    event["rawQueryString"].as_str().unwrap()
                );
                let params: Vec<(String, String)> =
                    form_urlencoded::parse(event["body"].as_str().unwrap().as_bytes()).into_owned().collect();
                event["headers"]["x-twilio-signature"] =
                    json!(vcare_providers::receipts::twilio_signature(SAMPLE_TWILIO_TOKEN, &url, &params));
            }
            if *binary == "openvidu-events" {
                // Signed as LiveKit signs, for this moment.
                let body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
                let now = chrono::Utc::now().timestamp();
                let (raw, auth) = vcare_tests::livekit::signed_webhook(&body, vcare_tests::livekit::API_SECRET, now);
                event["body"] = json!(raw);
                event["headers"]["authorization"] = json!(auth);
            }
            let response = deployed.invoke(event).await.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Some(failures) = response.get("batchItemFailures") {
                assert_eq!(failures, &json!([]), "{}", path.display());
            }
            let status = response["statusCode"].as_u64().unwrap_or(200);
            assert!((200..300).contains(&status), "{}: {response}", path.display());
            if *binary == "audit" {
                // The samples before it were audited: the doctor's accesses are there.
                let page: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
                let items = page["items"].as_array().unwrap();
                assert!(items.iter().any(|i| i["action"] == "room.read"), "{page}");
                assert!(items.iter().all(|i| i["actor"]["id"] == "u-doc"), "{page}");
            }
            if *binary == "notification-create" {
                let accepted: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
                notification_id = accepted["notificationId"].as_str().unwrap().to_owned();
            }
            if *binary == "room-create" {
                let room: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
                room_id = room["roomId"].as_str().unwrap().to_owned();
                jitsi_room = room["jitsiRoom"].as_str().unwrap().to_owned();
            }
            ran += 1;
        }
    }
    assert!(ran >= binaries.len());
    stack.stop().await;
}

#[tokio::test]
async fn the_gateway_builds_events_that_lambda_http_accepts() {
    // The event the gateway sends for a request must be the payload-2.0 shape
    // lambda_http parses (the same parser runs in Lambda).
    let stack = TestStack::start().await;
    let token = stack.token("u-1", Some("c-1"), &["doctor"]);
    let (status, _, _) = stack.get("/health?x=1", Some(&token)).await;
    assert_eq!(status, 200);
    let sample: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("events/health/live.json")).unwrap()).unwrap();
    let parsed: Result<lambda_http::request::LambdaRequest, _> = serde_json::from_value(sample);
    assert!(parsed.is_ok());
    stack.stop().await;
}

/// The local endpoint stands in for DynamoDB, so it must keep DynamoDB's
/// promise: a transaction is all or nothing, also when a write fails after
/// every condition held (infra/scripts/local_aws_server.py).
#[tokio::test]
async fn the_local_endpoint_applies_a_transaction_all_or_nothing() {
    use aws_sdk_dynamodb::types::{AttributeValue as V, Put, TransactWriteItem, Update};
    let stack = TestStack::start().await;
    let db = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let key = |pk: &str| HashMap::from([("pk".to_owned(), V::S(pk.into())), ("sk".to_owned(), V::S("t".into()))]);
    let pk = format!("TXTEST#{}", vcare_domain::ids::prefixed("t"));
    let (a, b) = (format!("{pk}#a"), format!("{pk}#b"));
    let mut item = key(&a);
    item.insert("v".into(), V::N("1".into()));
    db.put_item().table_name(&table).set_item(Some(item)).send().await.unwrap();
    let put_b = || {
        let mut item = key(&b);
        item.insert("v".into(), V::N("1".into()));
        TransactWriteItem::builder()
            .put(Put::builder().table_name(&table).set_item(Some(item)).build().unwrap())
            .build()
    };
    let update_a = |expression: &str, condition: &str, values: &[(&str, V)]| {
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&table)
                    .set_key(Some(key(&a)))
                    .update_expression(expression)
                    .condition_expression(condition)
                    .set_expression_attribute_values(Some(
                        values.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
                    ))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let state = || async {
        let get = |pk: String| db.get_item().table_name(&table).set_key(Some(key(&pk))).consistent_read(true).send();
        let a = get(a.clone()).await.unwrap().item.and_then(|i| i.get("v").cloned());
        let b = get(b.clone()).await.unwrap().item.is_some();
        (a, b)
    };

    // A condition that does not hold: cancelled, with its reason, nothing written.
    let err = db
        .transact_write_items()
        .transact_items(put_b())
        .transact_items(update_a("SET v = :two", "v = :two", &[(":two", V::N("2".into()))]))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
        cancelled,
    ) = err
    else {
        panic!("cancelled: {err:?}")
    };
    let reasons: Vec<_> =
        cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or_default().to_owned()).collect();
    assert_eq!(reasons, ["None", "ConditionalCheckFailed"]);
    assert_eq!(state().await, (Some(V::N("1".into())), false));

    // Every condition holds, but a write fails (adding a string to a number): nothing written.
    let err = db
        .transact_write_items()
        .transact_items(put_b())
        .transact_items(update_a(
            "SET w = :one, v = v + :s",
            "v = :one",
            &[(":one", V::N("1".into())), (":s", V::S("x".into()))],
        ))
        .send()
        .await
        .unwrap_err();
    assert!(format!("{:?}", err.into_service_error()).contains("Validation"));
    assert_eq!(state().await, (Some(V::N("1".into())), false), "the put of b is undone");

    // And when all holds, all is written.
    db.transact_write_items()
        .transact_items(put_b())
        .transact_items(update_a("SET v = :two", "v = :one", &[(":one", V::N("1".into())), (":two", V::N("2".into()))]))
        .send()
        .await
        .unwrap();
    assert_eq!(state().await, (Some(V::N("2".into())), true));
    stack.stop().await;
}

/// The new functions' settings: a bad value stops the cold start, naming
/// the setting (never its value).
#[tokio::test]
async fn bad_settings_of_the_event_and_receipt_functions_fail_the_cold_start_by_name() {
    let stack =
        TestStack::start_with(root().join("infra/template.yaml"), &Registry::vcare(), |c| c.event_sources = false)
            .await;
    let env = |id: &str, name: &str, value: &str| {
        let mut env = stack.gateway.function(id).unwrap().def.environment.clone();
        env.insert(name.into(), value.into());
        vcare_runtime::Env::from_map(env)
    };
    let sdk = &stack.sdk;
    let cases: Vec<(&str, Option<String>)> = vec![
        (
            "VONAGE_SIGNATURE_METHOD",
            dlr_callback::receipts(&env("DlrCallbackFunction", "VONAGE_SIGNATURE_METHOD", "crc32"), sdk)
                .await
                .err()
                .map(|e| e.to_string()),
        ),
        (
            "VONAGE_MAX_SKEW_SECONDS",
            dlr_callback::receipts(&env("DlrCallbackFunction", "VONAGE_MAX_SKEW_SECONDS", "0"), sdk)
                .await
                .err()
                .map(|e| e.to_string()),
        ),
        (
            "RECEIPT_EXPIRY_HOURS",
            dlr_sweep::sweep(&env("DlrSweepFunction", "RECEIPT_EXPIRY_HOURS", "soon"), sdk)
                .err()
                .map(|e| e.to_string()),
        ),
        (
            "SWEEP_AFTER_SECONDS",
            outbox_relay::relay(&env("OutboxRelayFunction", "SWEEP_AFTER_SECONDS", "-5"), sdk)
                .err()
                .map(|e| e.to_string()),
        ),
        (
            "REMINDER_WINDOWS",
            reminder_scheduler::scheduler(&env("ReminderSchedulerFunction", "REMINDER_WINDOWS", "tomorrow"), sdk)
                .await
                .err()
                .map(|e| e.to_string()),
        ),
        (
            "CLINIC_REMINDER_WINDOWS",
            reminder_scheduler::scheduler(
                &env("ReminderSchedulerFunction", "CLINIC_REMINDER_WINDOWS", "c1=10m;c2"),
                sdk,
            )
            .await
            .err()
            .map(|e| e.to_string()),
        ),
        (
            "CLINIC_LOCALES",
            vcare_comms::Notifications::from_env(&env("TemplatesFunction", "CLINIC_LOCALES", "c1=fa AF;c2"), sdk)
                .err()
                .map(|e| e.to_string()),
        ),
        (
            "TEMPLATE_CACHE_SECONDS",
            vcare_comms::Notifications::from_env(&env("SchedulesFunction", "TEMPLATE_CACHE_SECONDS", "-1"), sdk)
                .err()
                .map(|e| e.to_string()),
        ),
        (
            "REMINDER_WINDOWS",
            vcare_care::RoomsConfig::from_env(&env("RoomCreateFunction", "REMINDER_WINDOWS", "soon"))
                .err()
                .map(|e| e.to_string()),
        ),
        (
            "SCHEDULE_CATCH_UP_MINUTES",
            reminder_scheduler::scheduler(&env("ReminderSchedulerFunction", "SCHEDULE_CATCH_UP_MINUTES", "0"), sdk)
                .await
                .err()
                .map(|e| e.to_string()),
        ),
        (
            "WEBHOOK_ALLOW_LOOPBACK",
            vcare_comms::webhooks::WebhookEndpoints::from_env(
                &env("WebhooksFunction", "WEBHOOK_ALLOW_LOOPBACK", "yes"),
                sdk,
            )
            .err()
            .map(|e| e.to_string()),
        ),
        (
            "WEBHOOK_MAX_ENDPOINTS",
            vcare_comms::webhooks::WebhookEndpoints::from_env(
                &env("WebhooksFunction", "WEBHOOK_MAX_ENDPOINTS", "0"),
                sdk,
            )
            .err()
            .map(|e| e.to_string()),
        ),
        (
            "WEBHOOK_ALLOW_LOOPBACK",
            vcare_comms::webhook_deliveries::WebhookDeliveries::from_env(
                &env("WebhookDeliverFunction", "WEBHOOK_ALLOW_LOOPBACK", "TRUE"),
                sdk,
            )
            .err()
            .map(|e| e.to_string()),
        ),
        (
            "WEBHOOK_TIMEOUT_MS",
            vcare_comms::webhook_deliveries::WebhookDeliveries::from_env(
                &env("WebhookDeliverFunction", "WEBHOOK_TIMEOUT_MS", "60000"),
                sdk,
            )
            .err()
            .map(|e| e.to_string()),
        ),
    ];
    for (name, err) in cases {
        let text = err.unwrap_or_else(|| panic!("{name}: the cold start went on"));
        assert!(text.contains(name), "{name}: {text}");
    }
    stack.stop().await;
}
