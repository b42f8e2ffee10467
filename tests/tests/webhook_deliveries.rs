//! Webhooks end to end (issue 22) through the local gateway: a clinic's
//! endpoint gets the events it asked for, signed (checked by the Standard
//! Webhooks reference library), without the people in them; a 503 is
//! tried again by the schedule with the same `webhook-id`; a 410 disables
//! the endpoint, with its event, and nothing more is sent to it. Copies of
//! a delivery's message (SQS delivers at least once; an event replayed
//! fans out again) make one chain of tries, not two.

use std::time::Duration;

use serde_json::{Value, json};
use vcare_comms::webhook_deliveries::{DeliveryMessage, WebhookDeliveries};
use vcare_local::Registry;
use vcare_tests::rooms::{create_room, doctor, patient, room_body};
use vcare_tests::standins::{Reply, StandIn};
use vcare_tests::{TestStack, domain_events, eventually, root};

async fn room(stack: &TestStack, appointment: &str) -> String {
    let token = stack.token("u-doc", Some("c1"), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::hours(2);
    let (status, room) = create_room(stack, &token, &room_body(appointment, start, &[doctor(), patient()])).await;
    assert_eq!(status, 201, "{room}");
    room["roomId"].as_str().unwrap().to_owned()
}

fn verified(secret: &str, headers: &std::collections::HashMap<String, String>, body: &str) -> bool {
    use std::io::Write;
    let wanted = ["webhook-id", "webhook-timestamp", "webhook-signature"];
    let headers: serde_json::Map<String, Value> =
        headers.iter().filter(|(k, _)| wanted.contains(&k.as_str())).map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut child = std::process::Command::new(root().join(".venv/bin/python"))
        .arg(root().join("tests/python/webhook_check.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let given = json!({"secret": secret, "headers": headers, "body": body});
    child.stdin.take().unwrap().write_all(given.to_string().as_bytes()).unwrap();
    child.wait_with_output().unwrap().status.success()
}

/// A stack (its pollers on or off) with clinic c1's endpoint for
/// `virtual_care.room.created` at a stand-in answering `reply`: the
/// stand-in, the stack, c1's admin token and the endpoint as made.
async fn with_endpoint(reply: Reply, event_sources: bool) -> (StandIn, TestStack, String, Value) {
    let endpoint = StandIn::start(reply).await;
    let stack = TestStack::start_with(root().join("infra/template.yaml"), &Registry::vcare(), |c| {
        c.event_sources = event_sources;
        c.parameters.insert("WebhookAllowLoopback".into(), "true".into());
    })
    .await;
    let admin = stack.token("u-admin", Some("c1"), &["clinic-admin"]);
    let url = format!("{}/v1/webhooks/endpoints", stack.base);
    let body = json!({"url": format!("{}/hook", endpoint.url), "eventTypes": ["virtual_care.room.created"]});
    let (status, _, made) = stack.send(stack.http.post(&url).bearer_auth(&admin).json(&body)).await;
    assert_eq!(status, 201, "{made}");
    (endpoint, stack, admin, made)
}

#[tokio::test]
async fn endpoints_get_their_events_signed_retried_and_are_disabled_on_410() {
    let (endpoint, stack, admin, made) = with_endpoint(Reply::json(200, Value::Null), true).await;
    let (secret, id) = (made["secret"].as_str().unwrap().to_owned(), made["endpointId"].as_str().unwrap().to_owned());

    // The first try meets a 503; the schedule tries again (2.5 to 5 s on).
    endpoint.script([Reply::json(503, json!({"error": "busy"}))]);
    let room_id = room(&stack, "apt-hook-1").await;
    let got = eventually(Duration::from_secs(40), "the retried delivery", || async {
        let r = endpoint.requests();
        (r.len() >= 2).then_some(r)
    })
    .await;
    assert_eq!(got.len(), 2, "one failed try, one delivered");
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"], "the same delivery, the same id");
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(2400), "the schedule's first delay: {gap:?}");
    for r in &got {
        assert!(verified(&secret, &r.headers, &r.body), "the reference library verifies every try");
    }
    let sent: Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(
        (sent["type"].as_str(), sent["subject"].as_str()),
        (Some("virtual_care.room.created"), Some(room_id.as_str()))
    );
    assert!(!got[1].body.contains("u-pat") && !got[1].body.contains("u-doc"), "no people: {}", got[1].body);

    // The delivery log: the delivery with both its tries; a redelivery is
    // sent again now, with the same id.
    let log = format!("/v1/webhooks/endpoints/{id}/deliveries");
    let (status, _, page) = stack.get(&log, Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    let first = &page["items"][0];
    assert_eq!(
        (first["state"].as_str(), first["eventType"].as_str()),
        (Some("delivered"), Some("virtual_care.room.created"))
    );
    let tries: Vec<Value> = first["tries"].as_array().unwrap().clone();
    assert_eq!(
        (tries.len(), tries[0]["status"].as_u64(), tries[1]["result"].as_str()),
        (2, Some(503), Some("delivered"))
    );
    let delivery = first["deliveryId"].as_str().unwrap().to_owned();
    assert_eq!(delivery, got[0].headers["webhook-id"], "the log names the webhook-id");
    let again = format!("{}{log}/{delivery}/redeliver", stack.base);
    let (status, _, out) = stack.send(stack.http.post(&again).bearer_auth(&admin)).await;
    assert_eq!(status, 202, "{out}");
    let third = eventually(Duration::from_secs(20), "the redelivery", || async {
        let r = endpoint.requests();
        (r.len() >= 3).then(|| r[2].clone())
    })
    .await;
    assert_eq!(third.headers["webhook-id"], delivery);
    assert!(verified(&secret, &third.headers, &third.body));
    let theirs = stack.token("u-admin", Some("c2"), &["clinic-admin"]);
    assert_eq!(stack.send(stack.http.post(&again).bearer_auth(&theirs)).await.0, 404, "another clinic's");
    let bogus = format!("{}{log}/msg_nope/redeliver", stack.base);
    assert_eq!(stack.send(stack.http.post(&bogus).bearer_auth(&admin)).await.0, 404);
    assert_eq!(stack.get(&format!("{log}?limit=0"), Some(&admin)).await.0, 400);
    assert_eq!(stack.get(&format!("{log}?cursor=not-a-cursor"), Some(&admin)).await.0, 400);

    // 410: the endpoint is disabled, with its event; nothing more is sent.
    endpoint.set_default(Reply::json(410, Value::Null));
    room(&stack, "apt-hook-2").await;
    let shown = eventually(Duration::from_secs(30), "the endpoint disabled", || async {
        let (_, _, e) = stack.get(&format!("/v1/webhooks/endpoints/{id}"), Some(&admin)).await;
        (e["enabled"] == false).then_some(e)
    })
    .await;
    assert!(shown["disabledReason"].as_str().unwrap().contains("410"), "{shown}");
    let events = domain_events(&stack, 40, Duration::from_secs(10)).await;
    let disabled: Vec<&Value> =
        events.iter().filter(|e| e["type"] == "communication.webhook.endpoint_disabled").collect();
    assert_eq!(disabled.len(), 1, "{events:?}");
    assert_eq!(
        (disabled[0]["data"]["endpointId"].as_str(), disabled[0]["data"]["reason"].as_str()),
        (Some(id.as_str()), Some("gone"))
    );
    let (status, _, _) = stack.send(stack.http.post(&again).bearer_auth(&admin)).await;
    assert_eq!(status, 422, "a disabled endpoint's delivery is not sent again");
    let before = endpoint.requests().len();
    room(&stack, "apt-hook-3").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(endpoint.requests().len(), before, "a disabled endpoint gets nothing");
    stack.stop().await;
}

/// What comes to the delivery queue within `within` (a retry's delay
/// included).
async fn drain(stack: &TestStack, within: Duration) -> Vec<DeliveryMessage> {
    let url = stack.gateway.resource("WebhookDeliveryQueue").unwrap().reference.clone();
    let got = vcare_tests::receive(&stack.sdk, &url, usize::MAX, within).await;
    got.into_iter().map(|(body, _)| serde_json::from_value(body).unwrap()).collect()
}

#[tokio::test]
async fn copies_of_a_delivery_message_make_one_chain_of_tries() {
    let (endpoint, stack, admin, made) = with_endpoint(Reply::json(503, json!({"error": "busy"})), false).await;
    let id = made["endpointId"].as_str().unwrap().to_owned();
    let env = stack.gateway.function("WebhookDeliverFunction").unwrap().def.environment.clone();
    let worker = WebhookDeliveries::from_env(&vcare_runtime::Env::from_map(env), &stack.sdk).unwrap();
    let event = json!({"specversion": "1.0", "id": "ev-copy-1", "type": "virtual_care.room.created",
                       "time": chrono::Utc::now().to_rfc3339(), "subject": "rm_1", "clinicid": "c1",
                       "data": {"roomId": "rm_1"}});

    // The event twice before any try (a fan-out that died before its
    // message, then ran again): two messages for the one delivery.
    assert_eq!(worker.fan_out(&event).await.unwrap(), 1);
    assert_eq!(worker.fan_out(&event).await.unwrap(), 1, "never tried: queued again");
    let copies = drain(&stack, Duration::from_secs(2)).await;
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert_eq!((copies[0].tries, &copies[0].delivery_id), (0, &copies[1].delivery_id));

    // Both copies at once against a 503: one try is recorded, one retry queued.
    let (a, b) = tokio::join!(worker.deliver(&copies[0]), worker.deliver(&copies[1]));
    a.unwrap();
    b.unwrap();
    let log = format!("/v1/webhooks/endpoints/{id}/deliveries");
    let (_, _, page) = stack.get(&log, Some(&admin)).await;
    assert_eq!(page["items"][0]["tries"].as_array().unwrap().len(), 1, "{page}");
    let retries = drain(&stack, Duration::from_secs(7)).await;
    assert_eq!(retries.len(), 1, "one chain of retries: {retries:?}");
    assert_eq!(retries[0].tries, 1);
    let posted = endpoint.requests().len();
    assert!((1..=2).contains(&posted), "{posted}");

    // A late copy of the first message changes nothing and sends nothing.
    worker.deliver(&copies[0]).await.unwrap();
    assert_eq!(endpoint.requests().len(), posted, "a stale copy is dropped");
    assert!(drain(&stack, Duration::from_secs(1)).await.is_empty());

    // The retry is delivered; the event replayed makes no new delivery.
    endpoint.set_default(Reply::json(200, Value::Null));
    worker.deliver(&DeliveryMessage { due: chrono::Utc::now(), ..retries[0].clone() }).await.unwrap();
    let (_, _, page) = stack.get(&log, Some(&admin)).await;
    assert_eq!((page["items"][0]["state"].as_str(), page["items"].as_array().unwrap().len()), (Some("delivered"), 1));
    assert_eq!(worker.fan_out(&event).await.unwrap(), 0, "delivered already: nothing queued");
    assert!(drain(&stack, Duration::from_secs(1)).await.is_empty());
    worker.deliver(&retries[0]).await.unwrap();
    assert_eq!(endpoint.requests().len(), posted + 1, "sent once more, not again");
    stack.stop().await;
}

/// The 5-day rule through the store: an endpoint that has failed since a
/// try 5 days ago, with no success between, is disabled at its next
/// failure, with its event; what waited for it is cancelled, not sent.
#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_and_its_waiting_deliveries_cancelled() {
    let (endpoint, stack, admin, made) = with_endpoint(Reply::json(503, json!({"error": "busy"})), false).await;
    let id = made["endpointId"].as_str().unwrap().to_owned();
    let env = stack.gateway.function("WebhookDeliverFunction").unwrap().def.environment.clone();
    let mut worker = WebhookDeliveries::from_env(&vcare_runtime::Env::from_map(env), &stack.sdk).unwrap();
    let clock = vcare_runtime::Clock::shifted(chrono::Duration::zero());
    worker.clock = clock.clone();
    let event = |n: u32| {
        json!({"specversion": "1.0", "id": format!("ev-days-{n}"), "type": "virtual_care.room.created",
               "time": clock.now().to_rfc3339(), "subject": format!("rm_{n}"), "clinicid": "c1",
               "data": {"roomId": format!("rm_{n}")}})
    };
    let first = event(1);
    worker.fan_out(&first).await.unwrap();
    let queued = drain(&stack, Duration::from_secs(2)).await;
    worker.deliver(&queued[0]).await.unwrap();
    let retry = drain(&stack, Duration::from_secs(7)).await;
    assert_eq!(retry.len(), 1, "failed once, to be tried again");
    let (_, _, shown) = stack.get(&format!("/v1/webhooks/endpoints/{id}"), Some(&admin)).await;
    assert_eq!(shown["enabled"], true, "one failure does not disable: {shown}");

    // Nearly 5 days on, still failing: still enabled.
    clock.advance(chrono::Duration::days(5) - chrono::Duration::minutes(5));
    worker.fan_out(&event(2)).await.unwrap();
    worker.deliver(&drain(&stack, Duration::from_secs(2)).await[0]).await.unwrap();
    let (_, _, shown) = stack.get(&format!("/v1/webhooks/endpoints/{id}"), Some(&admin)).await;
    assert_eq!(shown["enabled"], true, "{shown}");
    drain(&stack, Duration::from_secs(6)).await;

    // Past 5 days since the first failure, with no success between.
    clock.advance(chrono::Duration::minutes(10));
    worker.fan_out(&event(3)).await.unwrap();
    worker.deliver(&drain(&stack, Duration::from_secs(2)).await[0]).await.unwrap();
    let (_, _, shown) = stack.get(&format!("/v1/webhooks/endpoints/{id}"), Some(&admin)).await;
    assert_eq!(shown["enabled"], false, "{shown}");
    assert!(shown["disabledReason"].as_str().unwrap().contains("5 days"), "{shown}");
    let events = vcare_tests::comms::outbox_events(&stack, &id).await;
    assert_eq!(events, ["communication.webhook.endpoint_disabled"], "once, checked against the catalogue");

    // The first delivery's retry, due now, is cancelled, not sent.
    let sent = endpoint.requests().len();
    assert_eq!(sent, 3);
    worker.deliver(&retry[0]).await.unwrap();
    assert_eq!(endpoint.requests().len(), sent, "nothing to a disabled endpoint");
    let (_, _, page) = stack.get(&format!("/v1/webhooks/endpoints/{id}/deliveries"), Some(&admin)).await;
    let states: Vec<&str> = page["items"].as_array().unwrap().iter().map(|d| d["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["failed", "pending", "cancelled"], "newest event first: {page}");
    stack.stop().await;
}

/// Garbage on either webhook queue (a fan-out message that is no event, a
/// delivery message of the wrong shape or an unknown field) is tried by
/// the queue's receives and then dead-lettered, sending and keeping nothing.
#[tokio::test]
async fn malformed_messages_on_either_webhook_queue_are_dead_lettered_and_do_nothing() {
    let (endpoint, stack, admin, made) = with_endpoint(Reply::json(200, Value::Null), true).await;
    let id = made["endpointId"].as_str().unwrap().to_owned();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let queue = |name: &str| stack.gateway.resource(name).unwrap().reference.clone();
    for body in ["not json", r#"{"id": "ev-x", "type": "virtual_care.room.created"}"#] {
        sqs.send_message()
            .queue_url(queue("WebhookQueue"))
            .message_body(body)
            .message_group_id("g")
            .message_deduplication_id(vcare_tests::stack_name())
            .send()
            .await
            .unwrap();
    }
    let wrong = [
        "{}".to_owned(),
        json!({"clinicId": "c1", "endpointId": id, "deliveryId": "msg_x", "due": "soon", "tries": 0}).to_string(),
        json!({"clinicId": "c1", "endpointId": id, "deliveryId": "msg_x", "due": "2026-12-07T10:00:00Z", "tries": -1})
            .to_string(),
        json!({"clinicId": "c1", "endpointId": id, "deliveryId": "msg_x", "due": "2026-12-07T10:00:00Z", "tries": 0,
               "url": "http://169.254.169.254/"})
        .to_string(),
    ];
    for body in &wrong {
        sqs.send_message().queue_url(queue("WebhookDeliveryQueue")).message_body(body).send().await.unwrap();
    }
    let dead = |name: &'static str, want: usize| {
        let (sqs, url) = (sqs.clone(), queue(name));
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            let mut got = Vec::new();
            while got.len() < want {
                assert!(tokio::time::Instant::now() < deadline, "{name}: {got:?}");
                let r = sqs.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(1).send();
                for m in r.await.unwrap().messages.unwrap_or_default() {
                    let handle = m.receipt_handle.unwrap();
                    sqs.delete_message().queue_url(&url).receipt_handle(handle).send().await.unwrap();
                    got.push(m.body.unwrap());
                }
            }
            got
        }
    };
    let (fanned, delivered) = tokio::join!(dead("WebhookDLQ", 2), dead("WebhookDeliveryDLQ", wrong.len()));
    assert_eq!(fanned.len(), 2, "{fanned:?}");
    let mut delivered = delivered;
    delivered.sort();
    let mut wrong = wrong.to_vec();
    wrong.sort();
    assert_eq!(delivered, wrong, "each dead-lettered as it was sent");
    assert!(endpoint.requests().is_empty(), "nothing sent");
    let (_, _, page) = stack.get(&format!("/v1/webhooks/endpoints/{id}/deliveries"), Some(&admin)).await;
    assert_eq!(page["items"], json!([]), "nothing kept");
    stack.stop().await;
}
