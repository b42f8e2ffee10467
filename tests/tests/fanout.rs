//! Fan-out (issue 22) on moto's SNS FIFO and SQS FIFO: consumers added at
//! run time — a FIFO queue and a subscription with its filter policy, the
//! same as a template change adds — each get exactly their events, in
//! order per aggregate, with the ids the outbox gave them; a duplicate
//! publish is dropped; a consumer's replay of a range sends that consumer
//! only that range's events its policy lets through, with their own ids.

use std::time::Duration;

use serde_json::{Value, json};
use vcare_local::Registry;
use vcare_tests::rooms::{create_room, doctor, room_body};
use vcare_tests::{TestStack, root};

async fn quiet() -> TestStack {
    TestStack::start_with(root().join("infra/template.yaml"), &Registry::vcare(), |c| c.event_sources = false).await
}

/// A FIFO queue subscribed to the topic with `policy` (raw delivery).
async fn consumer(stack: &TestStack, name: &str, policy: Option<Value>) -> String {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let sns = aws_sdk_sns::Client::new(&stack.sdk);
    let url = sqs
        .create_queue()
        .queue_name(format!("{}-{name}.fifo", vcare_tests::stack_name()))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let topic = stack.gateway.resource("DomainEventsTopic").unwrap().reference.clone();
    let mut subscribe =
        sns.subscribe().topic_arn(topic).protocol("sqs").endpoint(arn).attributes("RawMessageDelivery", "true");
    if let Some(p) = policy {
        subscribe = subscribe.attributes("FilterPolicy", p.to_string());
    }
    subscribe.send().await.unwrap();
    url
}

/// Everything on `queue` now: (event id, type, group), in receive order.
async fn drain(stack: &TestStack, queue: &str) -> Vec<(String, String, String)> {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            let event: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let group =
                m.attributes().unwrap()[&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId].clone();
            out.push((event["id"].as_str().unwrap().into(), event["type"].as_str().unwrap().into(), group));
            sqs.delete_message().queue_url(queue).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
}

/// Publishes what the outbox holds, at once (the relay's sweep).
async fn publish(stack: &TestStack) -> usize {
    let mut env = stack.gateway.function("OutboxRelayFunction").unwrap().def.environment.clone();
    env.insert("SWEEP_AFTER_SECONDS".into(), "0".into());
    let relay = outbox_relay::relay(&vcare_runtime::Env::from_map(env), &stack.sdk).unwrap();
    relay.sweep().await.unwrap().published
}

async fn room(stack: &TestStack, clinic: &str, appointment: &str) -> String {
    let token = stack.token("u-doc", Some(clinic), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::hours(2);
    let (status, room) = create_room(stack, &token, &room_body(appointment, start, &[doctor()])).await;
    assert_eq!(status, 201, "{room}");
    let id = room["roomId"].as_str().unwrap().to_owned();
    let end = format!("{}/v1/virtual-care/rooms/{id}/end", stack.base);
    assert_eq!(stack.send(stack.http.post(end).bearer_auth(&token).json(&json!({}))).await.0, 200);
    id
}

#[tokio::test]
async fn consumers_get_exactly_their_events_in_order_and_a_replay_only_its_range() {
    let stack = quiet().await;
    let rooms = consumer(&stack, "rooms", Some(json!({"type": [{"prefix": "virtual_care.room."}]}))).await;
    let second = consumer(&stack, "c2", Some(json!({"clinic": ["c2"]}))).await;
    let everything = stack.gateway.resource("DomainEventsQueue").unwrap().reference.clone();

    let first_c1 = room(&stack, "c1", "apt-fan-1").await;
    let first_c2 = room(&stack, "c2", "apt-fan-2").await;
    let published = publish(&stack).await;
    let mid = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let later_c1 = room(&stack, "c1", "apt-fan-3").await;
    let published = published + publish(&stack).await;

    // An event published again while its first copy waits in the queue is
    // dropped by its de-duplication id. (moto keeps the window only while
    // the first copy is in the queue; SQS keeps it five minutes.)
    let sns = aws_sdk_sns::Client::new(&stack.sdk);
    let topic = stack.gateway.resource("DomainEventsTopic").unwrap().reference.clone();
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let replayer = vcare_comms::replay::Replayer::new(&stack.sdk, &table, &topic);
    let hour = chrono::Duration::hours(1);
    let first = replayer.range(&vcare_domain::fanout::Policy::all(), mid - hour, mid + hour).await.unwrap()[0].clone();
    let attr = |v: &str| {
        aws_sdk_sns::types::MessageAttributeValue::builder().data_type("String").string_value(v).build().unwrap()
    };
    let (kind, clinic) = first.event_type_and_clinic();
    sns.publish()
        .topic_arn(&topic)
        .message(&first.event)
        .message_group_id(&first.aggregate_id)
        .message_deduplication_id(&first.event_id)
        .message_attributes("type", attr(&kind))
        .message_attributes("clinic", attr(&clinic))
        .send()
        .await
        .unwrap();

    let all = drain(&stack, &everything).await;
    assert_eq!(all.len(), published, "the unfiltered consumer gets every event once, the duplicate dropped");
    let of = |group: &str| {
        all.iter().filter(|(_, _, g)| g == group).map(|(id, t, _)| (id.clone(), t.clone())).collect::<Vec<_>>()
    };
    // Each room's events in the order they happened: created, then cancelled or ended.
    for id in [&first_c1, &first_c2, &later_c1] {
        let kinds: Vec<String> = of(id).into_iter().map(|(_, t)| t).collect();
        assert_eq!(kinds.first().map(String::as_str), Some("virtual_care.room.created"), "{id}: {kinds:?}");
        assert!(kinds.len() >= 2, "{id}: {kinds:?}");
    }
    let want = |keep: &dyn Fn(&str, &str) -> bool| {
        all.iter().filter(|(_, t, g)| keep(t, g)).map(|(id, _, _)| id.clone()).collect::<Vec<_>>()
    };
    let room_ids: Vec<String> = drain(&stack, &rooms).await.into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(room_ids, want(&|t, _| t.starts_with("virtual_care.room.")), "the rooms consumer: its events, same ids");
    let c2_ids: Vec<String> = drain(&stack, &second).await.into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(c2_ids, want(&|_, g| g == first_c2), "clinic c2's consumer: only c2's");

    // The rooms consumer asks for the first part again: only that range's
    // room events, to it alone, with their original ids.
    let policy = replayer.policy_of(&rooms).await.unwrap();
    let range = replayer.range(&policy, mid - chrono::Duration::hours(1), mid).await.unwrap();
    assert_eq!(replayer.send(&rooms, &range, "replay-1").await.unwrap(), range.len());
    let replayed: Vec<String> = drain(&stack, &rooms).await.into_iter().map(|(id, _, _)| id).collect();
    let early: Vec<String> = room_ids
        .iter()
        .filter(|id| of(&first_c1).iter().chain(of(&first_c2).iter()).any(|(e, _)| e == *id))
        .cloned()
        .collect();
    let mut sorted = (replayed.clone(), early.clone());
    sorted.0.sort();
    sorted.1.sort();
    assert_eq!(sorted.0, sorted.1, "the range's room events, none of the later room's");
    assert!(!replayed.iter().any(|id| of(&later_c1).iter().any(|(e, _)| e == id)));
    assert!(drain(&stack, &everything).await.is_empty() && drain(&stack, &second).await.is_empty(), "to it alone");
    stack.stop().await;
}
