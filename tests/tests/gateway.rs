//! The local gateway against tests/fixtures/gateway.yaml: the HTTP API with
//! its JWT authorizer, SQS and DynamoDB stream event sources, schedules.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use vcare_local::{DEV_AUDIENCE, DEV_ISSUER, DevIssuer, Gateway, MintClaims};
use vcare_tests::fixtures::{self, Probe};
use vcare_tests::{TempDir, TestStack, eventually};

async fn start(probe: &Probe) -> TestStack {
    TestStack::start_with(fixtures::template(), &fixtures::registry(probe), |_| {}).await
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn a_valid_token_reaches_the_function_with_flattened_claims() {
    let stack = start(&Probe::default()).await;
    let token = stack.token("u-doc", Some("c-1"), &["doctor", "offline_access"]);
    let (status, _, body) = stack.get("/echo/r-1?limit=5&tag=a&tag=b", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "r-1");
    assert_eq!(body["query"], "limit=5&tag=a&tag=b");
    // The HTTP API hands every claim on as a string; arrays and objects flattened.
    assert_eq!(body["claims"]["sub"], "u-doc");
    assert_eq!(body["claims"]["clinic_id"], "c-1");
    assert_eq!(body["claims"]["realm_access"], "map[roles:[doctor offline_access]]");
    assert_eq!(body["claims"]["aud"], DEV_AUDIENCE);
    assert_eq!(body["caller"], json!({"userId": "u-doc", "clinicId": "c-1", "roles": "[Doctor]"}));

    let (status, _, body) =
        stack.send(stack.http.post(format!("{}/echo/r-2", stack.base)).bearer_auth(&token).body("{\"a\":1}")).await;
    assert_eq!(status, 200);
    assert_eq!((body["method"].as_str(), body["body"].as_str()), (Some("POST"), Some("{\"a\":1}")));
    stack.stop().await;
}

#[tokio::test]
async fn the_authorizer_refuses_every_bad_token_with_401() {
    let stack = start(&Probe::default()).await;
    let good = stack.token("u-1", Some("c-1"), &["patient"]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (header, claims) = good.split_once('.').map(|(h, rest)| (h, rest.split('.').next().unwrap())).unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();

    // Tokens from a second issuer key pair: right shape, wrong key.
    let other_keys = TempDir::new();
    let other = DevIssuer::new(&other_keys.0);
    let mint = |issuer: &str, audience: &str, ttl: i64| {
        other.mint(
            issuer,
            audience,
            &MintClaims { sub: "u-1".into(), clinic_id: Some("c-1".into()), roles: vec![], ttl_seconds: ttl },
        )
    };
    let foreign = mint(DEV_ISSUER, DEV_AUDIENCE, 600).unwrap();

    let with_claims = |change: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        change(&mut c);
        // Re-signing needs the private key: tampering keeps the old signature.
        format!("{}.{}.{}", b64(&header), b64(&c), good.rsplit('.').next().unwrap())
    };
    let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims));
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"public key bytes as an HMAC secret"),
    )
    .unwrap();

    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("empty", Some(String::new())),
        ("garbage", Some("not-a-jwt".into())),
        ("alg none", Some(alg_none)),
        ("HS256 confusion", Some(hs256)),
        ("bad signature", Some(foreign)),
        ("tampered claims", Some(with_claims(&|c| c["clinic_id"] = json!("c-2")))),
        ("expired", Some(with_claims(&|c| c["exp"] = json!(now - 5)))),
        ("not yet valid", Some(with_claims(&|c| c["nbf"] = json!(now + 300)))),
        ("wrong issuer", Some(with_claims(&|c| c["iss"] = json!("https://evil.example/realms/x")))),
        ("wrong audience", Some(with_claims(&|c| c["aud"] = json!("another-api")))),
    ];
    for (what, token) in cases {
        let mut request = stack.http.get(format!("{}/echo/x", stack.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let (status, _, body) = stack.send(request).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body, json!({"message": "Unauthorized"}), "{what}");
    }
    // Tokens minted by the right key but for the wrong issuer/audience or expired.
    let own = DevIssuer::new(stack.keys_dir());
    for (what, issuer, audience, ttl) in [
        ("wrong issuer (signed)", "https://evil.example", DEV_AUDIENCE, 600),
        ("wrong audience (signed)", DEV_ISSUER, "x", 600),
        ("expired (signed)", DEV_ISSUER, DEV_AUDIENCE, -10),
    ] {
        let token = own
            .mint(
                issuer,
                audience,
                &MintClaims { sub: "u-1".into(), clinic_id: Some("c-1".into()), roles: vec![], ttl_seconds: ttl },
            )
            .unwrap();
        let (status, _, _) = stack.get("/echo/x", Some(&token)).await;
        assert_eq!(status, 401, "{what}");
    }
    // The good token still passes, and a public route needs none.
    assert_eq!(stack.get("/echo/x", Some(&good)).await.0, 200);
    assert_eq!(stack.get("/open", None).await.0, 200);
    stack.stop().await;
}

#[tokio::test]
async fn jwks_can_come_from_an_http_url() {
    let keys = TempDir::new();
    let issuer = DevIssuer::new(&keys.0);
    issuer.ensure().unwrap();
    let jwks = std::fs::read_to_string(issuer.jwks_path()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/realms/dev/protocol/openid-connect/certs", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/realms/dev/protocol/openid-connect/certs",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { jwks }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let probe = Probe::default();
    let stack = TestStack::start_with(fixtures::template(), &fixtures::registry(&probe), |c| {
        c.jwks = vcare_local::Jwks::Url(url);
    })
    .await;
    let token = issuer
        .mint(
            DEV_ISSUER,
            DEV_AUDIENCE,
            &MintClaims {
                sub: "u-9".into(),
                clinic_id: Some("c-9".into()),
                roles: vec!["nurse".into()],
                ttl_seconds: 60,
            },
        )
        .unwrap();
    let (status, _, body) = stack.get("/echo/a", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["caller"]["userId"], "u-9");
    // The stack's own dev key is not in that JWKS.
    assert_eq!(stack.get("/echo/a", Some(&stack.token("u-1", Some("c"), &[]))).await.0, 401);
    stack.stop().await;
    server.abort();
}

#[tokio::test]
async fn unknown_routes_panics_and_bodies_are_answered_like_api_gateway() {
    let stack = start(&Probe::default()).await;
    let (status, _, body) = stack.get("/nope", None).await;
    assert_eq!((status, body), (404, json!({"message": "Not Found"})));
    // A method the template does not declare for a path: also API Gateway's 404.
    let (status, _, body) = stack.send(stack.http.delete(format!("{}/open", stack.base))).await;
    assert_eq!((status, body), (404, json!({"message": "Not Found"})));
    let (status, _, body) = stack.get("/panic", None).await;
    assert_eq!((status, body), (500, json!({"message": "Internal Server Error"})));
    // The gateway survives a panicking function.
    assert_eq!(stack.get("/open", None).await.0, 200);
    // The template's Timeout (1 s here) is enforced as Lambda does.
    let started = std::time::Instant::now();
    let (status, _, body) = stack.get("/slow", None).await;
    assert_eq!((status, body), (500, json!({"message": "Internal Server Error"})));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let token = stack.token("u", Some("c"), &[]);
    let huge = "x".repeat(10 * 1024 * 1024 + 1);
    let (status, _, _) =
        stack.send(stack.http.post(format!("{}/echo/big", stack.base)).bearer_auth(&token).body(huge)).await;
    assert_eq!(status, 413);
    stack.stop().await;
}

#[tokio::test]
async fn sqs_partial_batch_failure_retries_only_the_failed_message_then_dead_letters_it() {
    let probe = Probe::default();
    let stack = start(&probe).await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let queue = stack.gateway.resource("WorkQueue").unwrap().reference.clone();
    let dlq = stack.gateway.resource("WorkDLQ").unwrap().reference.clone();
    for body in ["ok-1", "poison-1", "ok-2"] {
        sqs.send_message().queue_url(&queue).message_body(body).send().await.unwrap();
    }
    let dead = eventually(Duration::from_secs(30), "the poison message in the DLQ", || {
        let (sqs, dlq) = (sqs.clone(), dlq.clone());
        async move {
            let got = sqs.receive_message().queue_url(&dlq).max_number_of_messages(10).send().await.ok()?;
            got.messages.filter(|m| !m.is_empty())
        }
    })
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body.as_deref(), Some("poison-1"));
    // maxReceiveCount is 2: the function saw it twice; the good ones once each.
    assert_eq!(probe.sqs_count("poison-1"), 2);
    assert_eq!(probe.sqs_count("ok-1"), 1);
    assert_eq!(probe.sqs_count("ok-2"), 1);
    // Nothing is left on the queue.
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    use aws_sdk_sqs::types::QueueAttributeName as A;
    assert_eq!(attrs[&A::ApproximateNumberOfMessages], "0");
    assert_eq!(attrs[&A::ApproximateNumberOfMessagesNotVisible], "0");
    stack.stop().await;
}

#[tokio::test]
async fn stream_records_are_filtered_batched_and_checkpointed_on_partial_failure() {
    let probe = Probe::default();
    probe.fail_once.lock().unwrap().push("k2".into());
    let stack = start(&probe).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    use aws_sdk_dynamodb::types::AttributeValue as V;
    for k in ["k1", "k2", "k3"] {
        dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", V::S(k.into()))
            .item("n", V::N("1".into()))
            .send()
            .await
            .unwrap();
    }
    // A MODIFY: filtered out by the event source's pattern.
    dynamodb
        .put_item()
        .table_name(&table)
        .item("pk", V::S("k1".into()))
        .item("n", V::N("2".into()))
        .send()
        .await
        .unwrap();
    let records = eventually(Duration::from_secs(20), "three INSERT records", || {
        let records = probe.stream_records.clone();
        async move {
            let r = records.lock().unwrap().clone();
            (r.len() >= 3).then_some(r)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let records = {
        let now = probe.stream_records.lock().unwrap().clone();
        assert_eq!(now.len(), records.len());
        now
    };
    let keys: Vec<_> = records.iter().map(|r| r["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap().to_owned()).collect();
    // k2 failed once: k1 was checkpointed (not redelivered), k2 and k3 came again, in order.
    assert_eq!(keys, ["k1", "k2", "k3"]);
    for r in &records {
        assert_eq!(r["eventName"], "INSERT");
        assert_eq!(r["eventSource"], "aws:dynamodb");
        assert_eq!(r["dynamodb"]["NewImage"]["n"], json!({"N": "1"}));
        assert!(r["eventSourceARN"].as_str().unwrap().contains(":table/"));
    }
    stack.stop().await;
}

#[tokio::test]
async fn schedules_deliver_eventbridge_scheduled_events() {
    let probe = Probe::default();
    let stack = start(&probe).await;
    stack.gateway.fire_schedule("TickFunction", "EveryMinute").await.unwrap();
    let ticks = probe.ticks.lock().unwrap().clone();
    assert_eq!(ticks.len(), 1);
    assert_eq!(ticks[0]["detail-type"], "Scheduled Event");
    assert_eq!(ticks[0]["source"], "aws.events");
    assert!(stack.gateway.fire_schedule("TickFunction", "Nope").await.is_err());
    stack.stop().await;
}

#[tokio::test]
async fn a_template_function_without_code_is_a_startup_error() {
    // The template also has flaky, recorder and tick functions; this registry only has echo.
    let mut registry = vcare_local::Registry::default();
    registry.add("echo", |_, _| async { Ok(vcare_http::HttpFunction::new(axum::Router::new())) });
    let keys = TempDir::new();
    let config = vcare_tests::config(fixtures::template(), &vcare_tests::stack_name(), &keys.0);
    let err = Gateway::start(config, &registry, &vcare_tests::sdk().await).await.err().expect("startup fails");
    let text = err.to_string();
    assert!(text.contains("no code for binary"), "{text}");
    assert!(
        text.contains("FlakyFunction") || text.contains("RecorderFunction") || text.contains("TickFunction"),
        "{text}"
    );
}
