//! Inbound SMS handling against the writes it must make. `make bench`
//! (release, private loopback endpoint); under `cargo test`, a quick smoke
//! run.
//!
//! A number that was sent an SMS sends STOP, then START, alternately,
//! signed as the gateway signs them, through the handler in-process (the
//! same lambda_http conversion Lambda runs). Each one changes the
//! suppression list with its history line, accepts an answer (notification,
//! idempotency record and event, and its queue message) and marks the
//! message handled. The floor: those same writes made bare and at once.

use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue as V, Put, TransactWriteItem};
use serde_json::json;
use vcare_domain::notification::{Channel, Priority};
use vcare_providers::inbound::gateway_inbound_signature;
use vcare_runtime::Function;
use vcare_tests::comms::{PHONE, Providers, comms, stored_with};
use vcare_tests::measure::report_against_floor;

const SECRET: &str = "bench-inbound-secret";

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let messages = if bench { 200 } else { 4 };
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack_tuned(&p, "gateway", "ses", |c| {
        c.event_sources = false;
        c.secrets.insert("SmsGatewayInboundSecretCiphertext".into(), SECRET.into());
    })
    .await;
    let env = |id: &str| vcare_runtime::Env::from_map(stack.gateway.function(id).unwrap().def.environment.clone());
    let d = dispatch::dispatcher(&env("DispatchFunction"), &stack.sdk).await.unwrap();
    let function = dlr_callback::function(&env("DlrCallbackFunction"), &stack.sdk).await.unwrap();
    // The number was sent an SMS: the clinic and user are known.
    let m = stored_with(&comms(&stack), &[Channel::Sms], Priority::High, None, None).await;
    assert_eq!(format!("{:?}", d.handle(&m).await), "Ok(Sent)");
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(vcare_tests::root().join("events/dlr-callback/twilio-delivered.json")).unwrap(),
    )
    .unwrap();
    let (table, history) = (
        stack.gateway.resource("Table").unwrap().reference.clone(),
        stack.gateway.resource("ConsentTable").unwrap().reference.clone(),
    );
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let queue = stack.gateway.resource("DispatchQueue").unwrap().reference.clone();
    let put = |table: &str, pk: String| {
        let put = Put::builder()
            .table_name(table)
            .item("pk", V::S(pk))
            .item("sk", V::S("BENCH".into()))
            .item("payload", V::S("x".repeat(600)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .unwrap();
        TransactWriteItem::builder().put(put).build()
    };
    // The same writes, bare: the suppression with its two history lines,
    // the answer's accept (idempotency, notification, event) and its queue
    // message, and the handled mark.
    let floor = |i: usize| {
        let change = ddb.transact_write_items().set_transact_items(Some(vec![
            put(&table, format!("BENCH#supp#{i}")),
            put(&history, format!("BENCH#h1#{i}")),
            put(&history, format!("BENCH#h2#{i}")),
        ]));
        let answer = ddb.transact_write_items().set_transact_items(Some(vec![
            put(&table, format!("BENCH#idem#{i}")),
            put(&table, format!("BENCH#ntf#{i}")),
            put(&table, format!("BENCH#evt#{i}")),
        ]));
        let enqueue = sqs.send_message().queue_url(&queue).message_body("{}").send();
        let mark = ddb
            .put_item()
            .table_name(&table)
            .item("pk", V::S(format!("BENCH#in#{i}")))
            .item("sk", V::S("I".into()))
            .send();
        async move {
            let (a, b, c, e) = tokio::join!(change.send(), answer.send(), enqueue, mark);
            a.unwrap();
            b.unwrap();
            c.unwrap();
            e.unwrap();
        }
    };
    let (mut handler, mut bare) = (Vec::new(), Vec::new());
    for i in 0..messages {
        let text = if i % 2 == 0 { "STOP" } else { "START" };
        let body =
            json!({"messageId": format!("bench-{i}"), "from": PHONE, "to": "+93700000001", "text": text}).to_string();
        let ts = chrono::Utc::now().timestamp().to_string();
        let mut event = sample.clone();
        event["rawPath"] = json!("/v1/communication/inbound/gateway");
        event["requestContext"]["http"]["path"] = json!("/v1/communication/inbound/gateway");
        event["routeKey"] = json!("POST /v1/communication/inbound/{provider}");
        event["rawQueryString"] = json!("");
        event["queryStringParameters"] = json!({});
        event["pathParameters"] = json!({"provider": "gateway"});
        event["headers"]["content-type"] = json!("application/json");
        event["headers"]["x-timestamp"] = json!(ts);
        event["headers"]["x-signature"] = json!(gateway_inbound_signature(SECRET, &ts, body.as_bytes()));
        event["body"] = json!(body);
        let t = Instant::now();
        floor(i).await;
        bare.push(t.elapsed());
        let t = Instant::now();
        let response = function.invoke(event, Default::default()).await.unwrap();
        handler.push(t.elapsed());
        assert_eq!(response["statusCode"], 204, "{response}");
    }
    let n = handler.len();
    report_against_floor(
        &format!("inbound SMS warm, {n} signed gateway STOP/START from a known number (local AWS endpoint)"),
        handler,
        "the writes",
        bare,
    );
    stack.stop().await;
}
