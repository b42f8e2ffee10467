//! Fault injection (issue 9): a dependency fails under a function; what the
//! caller sees, what is retried, and the count that shows nothing was lost
//! or done twice. Faults come from the proxy in front of the local endpoint
//! (the service's own 500 on the named operation, the SDK's retries
//! included).

use aws_sdk_dynamodb::types::AttributeValue as V;
use serde_json::{Value, json};
use vcare_runtime::Function;
use vcare_tests::comms::{PHONE, Providers};
use vcare_tests::proxy::CountingProxy;

/// Items of a kind (`NOTIF#`, `IDEMP#`, `OUTBOX#`) for clinic c-fault.
async fn items(ddb: &aws_sdk_dynamodb::Client, table: &str, prefix: &str) -> usize {
    let scan = ddb.scan().table_name(table).send().await.unwrap();
    let of_clinic = |i: &std::collections::HashMap<String, V>| {
        i["pk"].as_s().is_ok_and(|pk| pk.starts_with(prefix))
            && i.values().any(|v| v.as_s().is_ok_and(|s| s.contains("c-fault")))
    };
    scan.items().iter().filter(|i| of_clinic(i)).count()
}

#[tokio::test]
async fn storage_failing_during_an_accept_is_a_503_that_writes_nothing_and_the_retry_accepts_once() {
    let p = Providers::start().await;
    let stack = vcare_tests::comms::quiet_stack(&p, "gateway", "ses").await;
    let proxy = CountingProxy::start(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await;
    let environment = stack.gateway.function("NotificationCreateFunction").unwrap().def.environment.clone();
    let env = vcare_runtime::Env::from_map(environment.clone());
    let function = notification_create::function(&env, &vcare_tests::sdk_via(&proxy.url).await).await.unwrap();
    let text = std::fs::read_to_string(vcare_tests::root().join("events/notification-create/accept.json")).unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    event["requestContext"]["authorizer"]["jwt"]["claims"]["clinic_id"] = json!("c-fault");
    event["headers"]["idempotency-key"] = json!("k-fault-accept");
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let table = &environment["TABLE_NAME"];
    let queued = async || {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&environment["DISPATCH_QUEUE_URL"])
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        let n =
            attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages].clone();
        n.parse::<usize>().unwrap()
    };

    // The transaction fails (every SDK retry too): the caller is told to retry.
    proxy.fail("TransactWriteItems");
    let answer = function.invoke(event.clone(), Default::default()).await.unwrap();
    assert_eq!(answer["statusCode"], 503, "{answer}");
    assert_eq!(answer["headers"]["content-type"], "application/problem+json");
    let body = answer["body"].as_str().unwrap();
    assert!(!body.contains(PHONE) && !body.contains("+93"), "{body}");
    assert!(proxy.count("TransactWriteItems") >= 2, "the SDK retried first");
    for kind in ["NOTIF#", "IDEMP#", "OUTBOX#"] {
        assert_eq!(items(&ddb, table, kind).await, 0, "{kind}: nothing written");
    }
    assert_eq!(queued().await, 0, "nothing queued");

    // Storage is back: the caller's retry (same key, same body) is accepted,
    // and a second retry answers the same id; one notification, one message.
    proxy.heal("TransactWriteItems");
    let first = function.invoke(event.clone(), Default::default()).await.unwrap();
    assert_eq!(first["statusCode"], 202, "{first}");
    let again = function.invoke(event.clone(), Default::default()).await.unwrap();
    assert_eq!(again["statusCode"], 202, "{again}");
    let id = |a: &Value| serde_json::from_str::<Value>(a["body"].as_str().unwrap()).unwrap()["notificationId"].clone();
    assert_eq!(id(&first), id(&again));
    for kind in ["NOTIF#", "IDEMP#", "OUTBOX#"] {
        assert_eq!(items(&ddb, table, kind).await, 1, "{kind}: written once");
    }
    // The replay of a still-queued notification queues it again (dispatch
    // claims attempts, so the copy sends nothing twice: dispatch.rs).
    assert!((1..=2).contains(&queued().await));
    stack.stop().await;
}
