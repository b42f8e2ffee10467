//! Receipt handling against its floor: the two writes a receipt must make
//! (the conditional delivery update, the history put), made bare and at
//! once. `make bench` (release, private loopback endpoint); under `cargo
//! test`, a quick smoke run.
//!
//! Each notification is sent through Twilio (stand-in), then two signed
//! receipts (`sent`, `delivered`) go through the handler in-process, via
//! the same lambda_http conversion Lambda runs; both advance the state.

use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue as V;
use serde_json::{Value, json};
use vcare_domain::notification::{Channel, Priority};
use vcare_runtime::Function;
use vcare_tests::comms::{PUBLIC_BASE, Providers, TWILIO_TOKEN, comms, stored_with};
use vcare_tests::measure::report_against_floor;

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let notifications = if bench { 200 } else { 3 };
    let p = Providers::start().await;
    let stack = vcare_tests::comms::quiet_stack(&p, "twilio", "ses").await;
    let env = |id: &str| vcare_runtime::Env::from_map(stack.gateway.function(id).unwrap().def.environment.clone());
    let d = dispatch::dispatcher(&env("DispatchFunction"), &stack.sdk).await.unwrap();
    let function = dlr_callback::function(&env("DlrCallbackFunction"), &stack.sdk).await.unwrap();
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(vcare_tests::root().join("events/dlr-callback/twilio-delivered.json")).unwrap(),
    )
    .unwrap();
    let sealer = comms(&stack);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    // The same writes, bare: a transaction with the conditional update (and,
    // for a final receipt, an event put) alongside the history put.
    let floor = |i: usize, with_event: bool| {
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
        let update = Update::builder()
            .table_name(&table)
            .key("pk", V::S("BENCH#floor".into()))
            .key("sk", V::S("NOTIF".into()))
            .update_expression("SET #r = :r ADD version :one")
            .condition_expression("attribute_not_exists(#r) OR #r < :r")
            .expression_attribute_names("#r", "rank")
            .expression_attribute_values(":r", V::N(i.to_string()))
            .expression_attribute_values(":one", V::N("1".into()))
            .build()
            .unwrap();
        let mut tx = ddb.transact_write_items().transact_items(TransactWriteItem::builder().update(update).build());
        if with_event {
            let event = Put::builder()
                .table_name(&table)
                .item("pk", V::S(format!("BENCH#event#{i}")))
                .item("sk", V::S("OUTBOX".into()))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .unwrap();
            tx = tx.transact_items(TransactWriteItem::builder().put(event).build());
        }
        let put = ddb
            .put_item()
            .table_name(&table)
            .item("pk", V::S("BENCH#floor".into()))
            .item("sk", V::S(format!("RECEIPT#{i}")))
            .condition_expression("attribute_not_exists(pk)")
            .send();
        async move {
            let (a, b) = tokio::join!(tx.send(), put);
            a.unwrap();
            b.unwrap();
        }
    };
    let (mut handler, mut bare) = (Vec::new(), Vec::new());
    for i in 0..notifications {
        let m = stored_with(&sealer, &[Channel::Sms], Priority::High, None, None).await;
        assert_eq!(format!("{:?}", d.handle(&m).await), "Ok(Sent)");
        let url = p.twilio.requests().last().unwrap().form()["StatusCallback"].clone();
        let query = url.split_once('?').unwrap().1.to_owned();
        for (j, status) in ["sent", "delivered"].into_iter().enumerate() {
            let params: Vec<(String, String)> = vec![
                ("AccountSid".into(), "AC0123456789".into()),
                ("MessageSid".into(), "SM0123456789abcdef".into()),
                ("MessageStatus".into(), status.into()),
                ("To".into(), vcare_tests::comms::PHONE.into()),
            ];
            let mut event = sample.clone();
            event["rawQueryString"] = json!(query);
            event["queryStringParameters"] = json!({});
            event["body"] = json!(form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish());
            event["headers"]["x-twilio-signature"] =
                json!(vcare_providers::receipts::twilio_signature(TWILIO_TOKEN, &url, &params));
            assert!(url.starts_with(PUBLIC_BASE));
            let t = Instant::now();
            floor(i * 2 + j, status == "delivered").await;
            bare.push(t.elapsed());
            let t = Instant::now();
            let response = function.invoke(event, Default::default()).await.unwrap();
            handler.push(t.elapsed());
            assert_eq!(response["statusCode"], 204, "{response}");
        }
    }
    let n = handler.len();
    report_against_floor(
        &format!("dlr-callback warm, {n} Twilio receipts that advance the state (local AWS endpoint)"),
        handler,
        "the two writes",
        bare,
    );
    stack.stop().await;
}
