//! Helpers for the communication tests: stacks wired to provider stand-ins,
//! notifications made directly in the store (no queue message), waiting for
//! a status.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue as V;

use serde_json::{Value, json};
use vcare_comms::{DispatchMessage, Notifications};
use vcare_domain::notification::{Channel, MaskedRecipient, Notification, Priority, Recipient, Status};
use vcare_domain::templates::Rendered;

use crate::TestStack;
use crate::standins::{Reply, StandIn};

pub const PHONE: &str = "+93701234567";
pub const EMAIL: &str = "zahra.karimi@example.org";
/// The API's public address as providers see it (behind a custom domain);
/// receipt URLs and Twilio's signatures use it, tests post to the stack.
pub const PUBLIC_BASE: &str = "https://api.vcare.example";
pub const TWILIO_TOKEN: &str = "tw-token";
pub const VONAGE_SIGNATURE_SECRET: &str = "vn-sig-secret";

/// Stand-ins for every provider vcare speaks to over HTTP.
pub struct Providers {
    pub gateway: StandIn,
    pub twilio: StandIn,
    pub vonage: StandIn,
    pub sendgrid: StandIn,
    pub fcm: StandIn,
    pub oauth: StandIn,
    /// A service-account key file for FCM, with a fresh RSA key.
    pub service_account: String,
    pub webpush: StandIn,
    /// The VAPID private key (PKCS#8 PEM).
    pub vapid_pem: String,
    pub apns: StandIn,
    /// The APNs `.p8` key (PKCS#8 PEM, P-256).
    pub apns_pem: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn vapid_pem() -> String {
    let pair =
        aws_lc_rs::signature::EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    pem("PRIVATE KEY", pair.to_pkcs8v1().unwrap().as_ref())
}

/// A Google service-account key file with a fresh RSA key.
fn service_account() -> String {
    use aws_lc_rs::encoding::AsDer;
    use base64::Engine;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key");
    let der: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().expect("PKCS#8");
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
    json!({
        "type": "service_account", "project_id": "demo-project", "private_key_id": "k1", "private_key": pem,
        "client_email": "vcare@demo-project.iam.gserviceaccount.com", "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

impl Providers {
    pub async fn start() -> Self {
        Self {
            gateway: StandIn::start(Reply::json(200, json!({"messageId": "gw-msg-1"}))).await,
            twilio: StandIn::start(Reply::json(201, json!({"sid": "SM0123456789abcdef", "status": "queued"}))).await,
            vonage: StandIn::start(Reply::json(
                200,
                json!({"message-count": "1", "messages": [{"to": "93701234567", "message-id": "vn-msg-1", "status": "0"}]}),
            ))
            .await,
            sendgrid: StandIn::start(Reply::json(202, Value::Null).header("x-message-id", "sg-msg-1")).await,
            fcm: StandIn::start(Reply::json(200, json!({"name": "projects/demo-project/messages/0:1"}))).await,
            oauth: StandIn::start(Reply::json(200, json!({"access_token": "ya29.test", "expires_in": 3599, "token_type": "Bearer"})))
                .await,
            service_account: service_account(),
            webpush: StandIn::start(Reply::json(201, Value::Null).header("location", "https://push.example/m/1")).await,
            vapid_pem: vapid_pem(),
            apns: StandIn::start(Reply::json(200, Value::Null).header("apns-id", "EC1BF194-B3B2-4C2B-A3F3-3A7E3B4B8F2A")).await,
            apns_pem: vapid_pem(),
        }
    }
}

/// vcare's stack with its providers pointed at the stand-ins.
pub async fn stack(p: &Providers, sms: &str, email: &str) -> TestStack {
    stack_tuned(p, sms, email, |_| {}).await
}

/// [`stack`] without the queue, stream and schedule pollers: for driving
/// functions by hand with nothing else loading the local endpoint
/// (benchmarks).
pub async fn quiet_stack(p: &Providers, sms: &str, email: &str) -> TestStack {
    stack_tuned(p, sms, email, |c| c.event_sources = false).await
}

/// [`stack`] whose functions make their AWS calls through `endpoint` (a
/// fault-injecting proxy in front of the local endpoint).
pub async fn stack_through(p: &Providers, sms: &str, email: &str, endpoint: &str) -> TestStack {
    build_stack(p, sms, email, Some(endpoint), |_| {}).await
}

pub async fn stack_tuned(
    p: &Providers,
    sms: &str,
    email: &str,
    tune: impl FnOnce(&mut vcare_local::GatewayConfig),
) -> TestStack {
    build_stack(p, sms, email, None, tune).await
}

async fn build_stack(
    p: &Providers,
    sms: &str,
    email: &str,
    endpoint: Option<&str>,
    tune: impl FnOnce(&mut vcare_local::GatewayConfig),
) -> TestStack {
    let params = [
        ("SmsGatewayUrl", p.gateway.url.clone()),
        ("TwilioBaseUrl", p.twilio.url.clone()),
        ("TwilioAccountSid", "AC0123456789".to_owned()),
        ("TwilioFrom", "+15005550006".to_owned()),
        ("SendgridBaseUrl", p.sendgrid.url.clone()),
        ("VonageBaseUrl", p.vonage.url.clone()),
        ("FcmProjectId", "demo-project".to_owned()),
        ("FcmBaseUrl", p.fcm.url.clone()),
        ("FcmTokenUrl", format!("{}/token", p.oauth.url)),
        ("VapidSubject", "mailto:ops@vcare.example".to_owned()),
        ("ApnsBaseUrl", p.apns.url.clone()),
        ("ApnsTeamId", "TEAM123456".to_owned()),
        ("ApnsKeyId", "KEY1234567".to_owned()),
        ("ApnsTopic", "org.vcare.app".to_owned()),
        ("VonageApiKey", "vn-key".to_owned()),
        ("VonageFrom", "vcare".to_owned()),
        ("EmailFrom", "no-reply@vcare.example".to_owned()),
        ("SmsProviders", sms.to_owned()),
        ("EmailProviders", email.to_owned()),
        ("RetryBaseSeconds", "0".to_owned()),
        // The Web Push stand-in is on loopback.
        ("PushAllowLoopback", "true".to_owned()),
        ("QuietHours", "0-0".to_owned()),
        ("DlrCallbackBaseUrl", PUBLIC_BASE.to_owned()),
    ];
    let (template, registry) = (crate::root().join("infra/template.yaml"), vcare_local::Registry::vcare());
    TestStack::start_through(template, &registry, endpoint, |c| {
        for (k, v) in params {
            c.parameters.insert(k.into(), v);
        }
        c.secrets.insert("SmsGatewayApiKeyCiphertext".into(), "gw-key".into());
        c.secrets.insert("TwilioAuthTokenCiphertext".into(), TWILIO_TOKEN.into());
        c.secrets.insert("SendgridApiKeyCiphertext".into(), "sg-key".into());
        c.secrets.insert("VonageApiSecretCiphertext".into(), "vn-secret".into());
        c.secrets.insert("VonageSignatureSecretCiphertext".into(), VONAGE_SIGNATURE_SECRET.into());
        c.secrets.insert("FcmServiceAccountCiphertext".into(), p.service_account.clone());
        c.secrets.insert("VapidPrivateKeyCiphertext".into(), p.vapid_pem.clone());
        c.secrets.insert("ApnsPrivateKeyCiphertext".into(), p.apns_pem.clone());
        c.retry_delay = Duration::from_secs(1);
        tune(c);
    })
    .await
}

pub fn body(channels: &[&str], priority: &str) -> Value {
    json!({
        "recipient": {"userId": "u-pat", "phone": PHONE, "email": EMAIL, "locale": "en"},
        "channels": channels, "template": "appointment-reminder", "priority": priority,
        "variables": {"when": "Tuesday 10:00", "joinUrl": "https://meet.vcare.local/secretroomname"},
    })
}

/// `POST /v1/communication/notifications` as `token`, under `key` (none:
/// without the header): the status, the content type and the body.
pub async fn post_notification(
    stack: &TestStack,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, String, Value) {
    let mut request =
        stack.http.post(format!("{}/v1/communication/notifications", stack.base)).bearer_auth(token).json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    stack.send(request).await
}

/// Accepted as a service of clinic c1 under `key`: the notification's id.
pub async fn accept(stack: &TestStack, body: &Value, key: &str) -> String {
    let token = stack.token("svc", Some("c1"), &["service"]);
    let (status, _, out) = post_notification(stack, &token, Some(key), body).await;
    assert_eq!(status, 202, "{out}");
    out["notificationId"].as_str().unwrap().to_owned()
}

pub async fn get(stack: &TestStack, id: &str) -> Value {
    let token = stack.token("svc", Some("c1"), &["service"]);
    let (status, _, out) = stack
        .send(stack.http.get(format!("{}/v1/communication/notifications/{id}", stack.base)).bearer_auth(token))
        .await;
    assert_eq!(status, 200, "{out}");
    out
}

/// Polls until the notification reaches `status`; panics after `within`.
pub async fn wait_for(stack: &TestStack, id: &str, status: &str, within: Duration) -> Value {
    crate::eventually(within, &format!("notification {id} {status}"), || async {
        let n = get(stack, id).await;
        (n["status"] == status).then_some(n)
    })
    .await
}

/// The stack's `Notifications`, as the notification functions build it.
pub fn comms(stack: &TestStack) -> Notifications {
    let env = stack.gateway.function("DispatchFunction").unwrap().def.environment.clone();
    Notifications::from_env(&vcare_runtime::Env::from_map(env), &stack.sdk).unwrap()
}

/// A notification written straight to the store, queued but not on the
/// queue: for driving the dispatcher by hand.
pub async fn stored(
    stack: &TestStack,
    channels: &[Channel],
    priority: Priority,
    timezone: Option<&str>,
    send_at: Option<chrono::DateTime<chrono::Utc>>,
) -> DispatchMessage {
    stored_with(&comms(stack), channels, priority, timezone, send_at).await
}

/// [`stored`] with a given `Notifications` (one data key for many notifications, as
/// one notification-create container seals them).
pub async fn stored_with(
    comms: &Notifications,
    channels: &[Channel],
    priority: Priority,
    timezone: Option<&str>,
    send_at: Option<chrono::DateTime<chrono::Utc>>,
) -> DispatchMessage {
    let id = vcare_domain::ids::prefixed("ntf");
    let now = chrono::Utc::now();
    let recipient = Recipient {
        user_id: Some("u-pat".into()),
        phone: Some(PHONE.into()),
        email: Some(EMAIL.into()),
        push_tokens: vec![],
        locale: None,
        timezone: timezone.map(str::to_owned),
    };
    let messages = channels
        .iter()
        .map(|c| {
            (
                *c,
                Rendered {
                    subject: Some("Reminder".into()),
                    body: "Your consultation is at 10:00.".into(),
                    html: None,
                },
            )
        })
        .collect();
    let n = Notification {
        notification_id: id.clone(),
        clinic_id: "c1".into(),
        status: Status::Queued,
        channels: channels.to_vec(),
        priority,
        send_at,
        created_at: now,
        updated_at: now,
        channel: None,
        provider: None,
        attempts: vec![],
        recipient: MaskedRecipient::of(&recipient),
        timezone: timezone.map(str::to_owned),
        sealed_recipient: comms.seal_recipient("c1", &id, &recipient).await.unwrap(),
        sealed_messages: comms.seal_messages("c1", &id, &messages).await.unwrap(),
        delivery: Default::default(),
        awaiting_receipt_since: None,
        reconcile_at: None,
        category: "general".into(),
        address_hashes: [
            (Channel::Sms, comms.address_hash(Channel::Sms, PHONE).await.unwrap()),
            (Channel::Email, comms.address_hash(Channel::Email, EMAIL).await.unwrap()),
        ]
        .into_iter()
        .filter(|(c, _)| channels.contains(c))
        .collect(),
        replies: vec![],
        context: None,
        template: None,
    };
    let event =
        vcare_domain::events::DomainEvent::new("communication.notification.accepted", "c1", &id, now, n.summary());
    let accepted = comms.store.accept(&n, &id, "h", &event, now, chrono::Duration::hours(1), None).await.unwrap();
    // `Existing` with the same request: the SDK retried an accept that had
    // already been written (a slow endpoint); the notification is there.
    assert!(
        matches!(&accepted, vcare_store::Accepted::New)
            || matches!(&accepted, vcare_store::Accepted::Existing { notification_id, same_request: true } if *notification_id == id),
        "{accepted:?}"
    );
    DispatchMessage { clinic_id: "c1".into(), notification_id: id }
}

/// Every item of a notification's partition whose sort key starts so.
pub async fn partition_items(stack: &TestStack, notification_id: &str, prefix: &str) -> Vec<HashMap<String, V>> {
    let db = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    db.query()
        .table_name(table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
        .expression_attribute_values(":pk", V::S(format!("NOTIF#c1#{notification_id}")))
        .expression_attribute_values(":p", V::S(prefix.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

/// The outbox events of a notification, by type (each checked against the catalogue).
pub async fn outbox_events(stack: &TestStack, notification_id: &str) -> Vec<String> {
    let db = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.gateway.resource("Table").unwrap().reference.clone();
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = db
            .scan()
            .table_name(&table)
            .filter_expression("kind = :k AND aggregateId = :a")
            .expression_attribute_values(":k", V::S("outbox".into()))
            .expression_attribute_values(":a", V::S(notification_id.into()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items.unwrap_or_default() {
            if let Some(V::S(e)) = item.get("event") {
                crate::catalogue::validate(&serde_json::from_str(e).unwrap()).unwrap_or_else(|e| panic!("{e}"));
            }
            if let Some(V::S(t)) = item.get("eventType") {
                out.push(t.trim_start_matches("communication.notification.").to_owned());
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    out.sort();
    out
}

/// Every item of the stack's tables (the main table and the consent
/// history), as text: for asserting what is never stored in clear.
pub async fn table_text(stack: &TestStack) -> String {
    let db = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let mut out = String::new();
    for id in ["Table", "ConsentTable"] {
        let table = stack.gateway.resource(id).unwrap().reference.clone();
        let mut start = None;
        loop {
            let page = db.scan().table_name(&table).set_exclusive_start_key(start).send().await.unwrap();
            out.push_str(&format!("{:?}", page.items.unwrap_or_default()));
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
    }
    out
}

/// The texts the SMS gateway stand-in was asked to send to `phone`.
pub fn sms_to(requests: &[crate::standins::Recorded], phone: &str) -> Vec<String> {
    requests
        .iter()
        .map(|r| r.json())
        .filter(|b| b["to"] == phone)
        .map(|b| b["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}
