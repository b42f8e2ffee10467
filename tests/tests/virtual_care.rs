//! Virtual care end to end through the local gateway: rooms, who may do
//! what, Jitsi join tokens (checked by an independent JWT implementation
//! against Prosody's rules), reservations, event_sync, end, images, history.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vcare_tests::{JITSI_APP_SECRET, JITSI_WEBHOOK_SECRET, TestStack};

const DOMAIN: &str = "meet.vcare.local";

struct Api {
    stack: TestStack,
}

impl Api {
    async fn start() -> Self {
        Self { stack: TestStack::start().await }
    }

    fn token(&self, sub: &str, clinic: &str, roles: &[&str]) -> String {
        self.stack.token(sub, Some(clinic), roles)
    }

    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, String, Value) {
        let url = format!("{}{path}", self.stack.base);
        let mut request = self.stack.http.request(method.parse().unwrap(), url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.stack.send(request).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self.call("POST", path, Some(token), Some(body)).await;
        (status, body)
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let (status, _, body) = self.call("GET", path, Some(token), None).await;
        (status, body)
    }

    /// Creates a room as a doctor of `clinic`; panics unless 201.
    async fn room(&self, clinic: &str, body: Value) -> Value {
        let (status, room) = self.post("/v1/virtual-care/rooms", &self.token("u-doc", clinic, &["doctor"]), body).await;
        assert_eq!(status, 201, "{room}");
        room
    }

    async fn jitsi(
        &self,
        method: &str,
        path: &str,
        secret: Option<&str>,
        body: Option<(&str, String)>,
    ) -> (u16, Value) {
        let mut request = self.stack.http.request(method.parse().unwrap(), format!("{}{path}", self.stack.base));
        if let Some(secret) = secret {
            request = request.header("x-jitsi-shared-secret", secret);
        }
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        let (status, _, body) = self.stack.send(request).await;
        (status, body)
    }

    async fn event_sync(&self, what: &str, payload: Value) -> (u16, Value) {
        let path = format!("/v1/virtual-care/jitsi/events/{what}");
        self.jitsi("POST", &path, Some(JITSI_WEBHOOK_SECRET), Some(("application/json", payload.to_string()))).await
    }

    /// Every outbox record of the stack's table, each checked against the
    /// event catalogue.
    async fn outbox(&self) -> Vec<Value> {
        let ddb = aws_sdk_dynamodb::Client::new(&self.stack.sdk);
        let table = self.stack.gateway.resource("Table").unwrap().reference.clone();
        let items = ddb.scan().table_name(table).send().await.unwrap().items.unwrap_or_default();
        let events: Vec<Value> = items
            .iter()
            .filter(|i| i.get("kind").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("outbox"))
            .map(|i| serde_json::from_str(i["event"].as_s().unwrap()).unwrap())
            .collect();
        for e in &events {
            vcare_tests::catalogue::validate(e).unwrap_or_else(|err| panic!("{err}"));
        }
        events
    }

    async fn count_kind(&self, kind: &str) -> usize {
        let ddb = aws_sdk_dynamodb::Client::new(&self.stack.sdk);
        let table = self.stack.gateway.resource("Table").unwrap().reference.clone();
        let items = ddb.scan().table_name(table).send().await.unwrap().items.unwrap_or_default();
        items.iter().filter(|i| i.get("kind").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(kind)).count()
    }
}

/// A room body starting `start_in` from now, 30 minutes long, without a
/// waiting room (tests/waiting_room.rs has those).
fn body(appointment: &str, start_in: chrono::Duration) -> Value {
    let start = Utc::now() + start_in;
    json!({
        "appointmentId": appointment,
        "lobby": false,
        "scheduledStart": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "scheduledEnd": (start + chrono::Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "participants": [
            {"userId": "u-doc", "role": "doctor", "displayName": "Dr. Amini"},
            {"userId": "u-pat", "role": "patient", "displayName": "Zahra Karimi"},
            {"userId": "u-int", "role": "interpreter", "displayName": "Omid"},
            {"userId": "u-nur", "role": "nurse", "displayName": "Nurse Laila"},
        ],
    })
}

fn soon() -> chrono::Duration {
    chrono::Duration::minutes(5)
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn a_room_is_created_once_per_appointment_even_under_concurrency() {
    let api = Api::start().await;
    let doctor = api.token("u-doc", "c1", &["doctor"]);
    let b = body("apt-1", soon());
    let (status, room) = api.post("/v1/virtual-care/rooms", &doctor, b.clone()).await;
    assert_eq!(status, 201, "{room}");
    assert_eq!(room["status"], "scheduled");
    assert_eq!(room["clinicId"], "c1");
    let jitsi = room["jitsiRoom"].as_str().unwrap();
    assert!(jitsi.len() >= 26 && jitsi.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{jitsi}");
    assert!(!jitsi.contains("apt") && !jitsi.contains("doc"));
    assert_eq!(room["joinUrl"], format!("https://{DOMAIN}/{jitsi}"));
    assert_eq!(
        (room["lobby"].as_bool(), room["maxParticipants"].as_u64(), room["recording"].as_bool()),
        (Some(false), Some(10), Some(false)),
        "as asked, and the defaults (a room with a lobby is the default: tests/waiting_room.rs)"
    );
    assert_eq!(room["provider"], "jitsi", "the clinic's provider");
    assert_eq!(room["participants"].as_array().unwrap().len(), 4);

    // The same request again: 200, the same room, unchanged.
    let (status, again) = api.post("/v1/virtual-care/rooms", &doctor, b.clone()).await;
    assert_eq!((status, &again), (200, &room));
    // Another body for the appointment: 409.
    let mut other = b.clone();
    other["recording"] = json!(true);
    let (status, problem) = api.post("/v1/virtual-care/rooms", &doctor, other).await;
    assert_eq!(status, 409, "{problem}");
    // Another clinic's same appointment id is another room.
    let (status, theirs) = api.post("/v1/virtual-care/rooms", &api.token("u-doc", "c2", &["doctor"]), b).await;
    assert_eq!(status, 201);
    assert_ne!(theirs["roomId"], room["roomId"]);

    // Eight concurrent creates of one appointment: one room.
    let b = body("apt-race", soon());
    let calls = (0..8).map(|_| api.post("/v1/virtual-care/rooms", &doctor, b.clone()));
    let results = join_all(calls).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let ids: HashSet<_> = results.iter().map(|(_, r)| r["roomId"].as_str().unwrap_or("?").to_owned()).collect();
    assert_eq!(created, 1, "{results:?}");
    assert!(results.iter().all(|(s, _)| *s == 201 || *s == 200), "{results:?}");
    assert_eq!(ids.len(), 1);

    // Each new room wrote exactly one room.created event, without names.
    let events = api.outbox().await;
    let created: Vec<_> = events.iter().filter(|e| e["type"] == "virtual_care.room.created").collect();
    assert_eq!(created.len(), 3);
    for e in &created {
        assert_eq!(e["specversion"], "1.0");
        let text = e.to_string();
        assert!(!text.contains("Amini") && !text.contains("Zahra"), "{text}");
    }
    api.stack.stop().await;
}

/// Runs the calls concurrently on this task and returns their results in order.
async fn join_all<F: std::future::Future<Output = (u16, Value)>>(calls: impl Iterator<Item = F>) -> Vec<(u16, Value)> {
    vcare_tests::join_all(calls).await
}

#[tokio::test]
async fn bad_room_requests_are_problems_and_write_nothing() {
    let api = Api::start().await;
    let doctor = api.token("u-doc", "c1", &["doctor"]);
    let url = format!("{}/v1/virtual-care/rooms", api.stack.base);
    let good = body("apt-bad", soon());
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        f(&mut b);
        b.to_string()
    };
    let many: Vec<Value> =
        (0..51).map(|i| json!({"userId": format!("u{i}"), "role": "doctor", "displayName": "D"})).collect();
    let cases: Vec<(&str, String, u16)> = vec![
        ("malformed JSON", "{\"appointmentId\": ".into(), 400),
        ("not an object", "[1,2]".into(), 400),
        ("wrong type", with(&|b| b["lobby"] = json!("yes")), 400),
        ("unknown role", with(&|b| b["participants"][0]["role"] = json!("surgeon")), 400),
        ("unknown field", with(&|b| b["room"] = json!("x")), 400),
        (
            "missing field",
            with(&|b| {
                b.as_object_mut().unwrap().remove("scheduledEnd");
            }),
            400,
        ),
        ("bad time", with(&|b| b["scheduledStart"] = json!("23/11/2026")), 400),
        ("bad appointment id", with(&|b| b["appointmentId"] = json!("../../etc")), 400),
        ("end before start", with(&|b| b["scheduledEnd"] = json!("2020-01-01T00:00:00Z")), 422),
        (
            "longer than 8 hours",
            with(&|b| {
                let s = time(&b["scheduledStart"]);
                b["scheduledEnd"] = json!((s + chrono::Duration::hours(9)).to_rfc3339());
            }),
            422,
        ),
        (
            "no doctor",
            with(&|b| b["participants"] = json!([{"userId": "p", "role": "patient", "displayName": "P"}])),
            422,
        ),
        ("duplicate user", with(&|b| b["participants"][1]["userId"] = json!("u-doc")), 422),
        (
            "51 participants",
            with(&|b| {
                b["participants"] = json!(many.clone());
                b["maxParticipants"] = json!(100);
            }),
            400,
        ),
        ("no participants", with(&|b| b["participants"] = json!([])), 400),
        ("oversized", with(&|b| b["participants"][0]["displayName"] = json!("x".repeat(300 * 1024))), 413),
    ];
    for (what, raw, want) in cases {
        let (status, content_type, problem) = api
            .stack
            .send(api.stack.http.post(&url).bearer_auth(&doctor).header("content-type", "application/json").body(raw))
            .await;
        assert_eq!(status, want, "{what}: {problem}");
        assert_eq!(content_type, "application/problem+json", "{what}");
        assert_eq!(problem["status"], want, "{what}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}");
    }
    let (status, _, _) = api.stack.send(api.stack.http.post(&url).bearer_auth(&doctor).body(good.to_string())).await;
    assert_eq!(status, 415, "no content type");
    let (status, _) = api.post("/v1/virtual-care/rooms", &api.token("u-pat", "c1", &["patient"]), good.clone()).await;
    assert_eq!(status, 403, "a patient may not create rooms");
    let (status, _) =
        api.post("/v1/virtual-care/rooms", &api.stack.token("u-doc", None, &["doctor"]), good.clone()).await;
    assert_eq!(status, 403, "a token without clinic_id");
    assert_eq!(api.count_kind("room").await, 0);
    assert!(api.outbox().await.is_empty());
    // Bad ids in paths are 404s, not errors.
    for path in ["/v1/virtual-care/rooms/..%2F..", "/v1/virtual-care/rooms/a%20b", "/v1/virtual-care/rooms/x"] {
        let (status, _) = api.get(path, &doctor).await;
        assert_eq!(status, 404, "{path}");
    }
    api.stack.stop().await;
}

/// The README's role × action table, one assertion per cell.
#[tokio::test]
async fn who_may_do_what() {
    let api = Api::start().await;
    let actors: Vec<(&str, String)> = vec![
        ("doctor (listed)", api.token("u-doc", "c1", &["doctor"])),
        ("nurse (listed)", api.token("u-nur", "c1", &["nurse"])),
        ("patient (listed)", api.token("u-pat", "c1", &["patient"])),
        ("interpreter (listed)", api.token("u-int", "c1", &["interpreter"])),
        ("doctor (not listed)", api.token("u-doc2", "c1", &["doctor"])),
        ("patient (not listed)", api.token("u-pat2", "c1", &["patient"])),
        ("clinic-admin", api.token("u-adm", "c1", &["clinic-admin"])),
        ("service", api.token("svc-scheduler", "c1", &["service"])),
        ("doctor of another clinic", api.token("u-doc", "c2", &["doctor"])),
    ];
    // Expected status per action, in the order of `actors`.
    let table: Vec<(&str, [u16; 9])> = vec![
        ("create", [201, 201, 403, 403, 201, 403, 201, 201, 201]),
        ("get", [200, 200, 200, 200, 200, 404, 200, 200, 404]),
        ("token", [201, 201, 201, 201, 403, 404, 403, 403, 404]),
        ("issue", [202, 202, 202, 202, 403, 404, 403, 403, 404]),
        ("image upload", [201, 201, 201, 201, 403, 404, 403, 403, 404]),
        ("image list", [200, 200, 200, 200, 403, 404, 403, 403, 404]),
        ("end", [200, 403, 403, 403, 403, 404, 200, 200, 404]),
    ];
    let shared = api.room("c1", body("apt-shared", soon())).await;
    let room_path = format!("/v1/virtual-care/rooms/{}", shared["roomId"].as_str().unwrap());
    for (action, expected) in &table {
        for (i, (actor, token)) in actors.iter().enumerate() {
            let (status, body) = match *action {
                "create" => api.post("/v1/virtual-care/rooms", token, body(&format!("apt-create-{i}"), soon())).await,
                "get" => api.get(&room_path, token).await,
                "token" => api.post(&format!("{room_path}/tokens"), token, json!({})).await,
                "issue" => api.post(&format!("{room_path}/issues"), token, json!({"issueType": "video"})).await,
                "image upload" => {
                    api.post(
                        &format!("{room_path}/images"),
                        token,
                        json!({"contentType": "image/png", "sizeBytes": 10}),
                    )
                    .await
                }
                "image list" => api.get(&format!("{room_path}/images"), token).await,
                "end" => {
                    // Ending is destructive: a fresh room per cell.
                    let fresh = api.room("c1", body(&format!("apt-end-{i}"), soon())).await;
                    api.post(
                        &format!("/v1/virtual-care/rooms/{}/end", fresh["roomId"].as_str().unwrap()),
                        token,
                        json!({}),
                    )
                    .await
                }
                _ => unreachable!(),
            };
            assert_eq!(status, expected[i], "{action} by {actor}: {body}");
        }
    }
    // A service may ask a token for a listed participant, not for others; nobody else may ask for someone.
    let service = &actors[7].1;
    let (status, token) = api.post(&format!("{room_path}/tokens"), service, json!({"userId": "u-pat"})).await;
    assert_eq!(status, 201, "{token}");
    assert_eq!(token["moderator"], false);
    let (status, _) = api.post(&format!("{room_path}/tokens"), service, json!({"userId": "u-stranger"})).await;
    assert_eq!(status, 422);
    let (status, _) = api.post(&format!("{room_path}/tokens"), &actors[0].1, json!({"userId": "u-pat"})).await;
    assert_eq!(status, 403, "a doctor asking a token for the patient");
    let (status, _) = api.post(&format!("{room_path}/tokens"), &actors[0].1, json!({"user": "x"})).await;
    assert_eq!(status, 400, "unknown field");
    api.stack.stop().await;
}

/// Verifies a join token with jsonwebtoken (not the code that signed it) and
/// checks each rule Prosody's token plugins apply.
fn verify_hs256(token: &str, room: &Value) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.leeway = 0;
    v.set_issuer(&["vcare"]);
    v.set_audience(&["jitsi"]);
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    let key = jsonwebtoken::DecodingKey::from_secret(JITSI_APP_SECRET.as_bytes());
    let claims = jsonwebtoken::decode::<Value>(token, &key, &v).unwrap().claims;
    prosody_rules(&claims, room);
    claims
}

fn prosody_rules(claims: &Value, room: &Value) {
    assert!(claims["aud"].is_string(), "aud is a string");
    assert_eq!(claims["sub"], DOMAIN);
    let name = claims["room"].as_str().unwrap();
    assert_eq!(name, name.to_lowercase());
    assert_eq!(name, room["jitsiRoom"].as_str().unwrap());
    let now = Utc::now().timestamp();
    let nbf = claims["nbf"].as_i64().unwrap();
    assert!(nbf <= now, "Prosody has no clock skew: nbf {nbf} must not be after now {now}");
    assert!(nbf <= claims["iat"].as_i64().unwrap());
    assert_eq!(nbf, (time(&room["scheduledStart"]) - chrono::Duration::minutes(15)).timestamp());
    assert_eq!(
        claims["exp"].as_i64().unwrap(),
        (time(&room["scheduledEnd"]) + chrono::Duration::minutes(30)).timestamp()
    );
    let user = &claims["context"]["user"];
    for field in ["id", "name", "moderator", "affiliation"] {
        assert!(user[field].is_string(), "context.user.{field} is a string: {user}");
    }
    let features = &claims["context"]["features"];
    for field in ["recording", "livestreaming"] {
        assert!(features[field].is_string(), "context.features.{field} is explicit");
    }
    assert_eq!(features["livestreaming"], "false");
}

#[tokio::test]
async fn join_tokens_are_what_prosody_accepts() {
    let api = Api::start().await;
    let mut b = body("apt-tok", soon());
    b["recording"] = json!(true);
    let room = api.room("c1", b).await;
    let path = format!("/v1/virtual-care/rooms/{}/tokens", room["roomId"].as_str().unwrap());

    let (status, doctor) = api.post(&path, &api.token("u-doc", "c1", &["doctor"]), json!({})).await;
    assert_eq!(status, 201, "{doctor}");
    let claims = verify_hs256(doctor["token"].as_str().unwrap(), &room);
    assert_eq!(claims["iss"], "vcare");
    assert_eq!(
        claims["context"]["user"],
        json!({"id": "u-doc", "name": "Dr. Amini", "moderator": "true", "affiliation": "owner",
               "lobby_bypass": true, "lobby": false})
    );
    // A recording room, but its patient has not said yes
    // (tests/recordings.rs has the consent).
    assert_eq!(claims["context"]["features"]["recording"], "false");
    assert_eq!(doctor["moderator"], true);
    assert_eq!(
        doctor["joinUrl"],
        format!("https://{DOMAIN}/{}?jwt={}", room["jitsiRoom"].as_str().unwrap(), doctor["token"].as_str().unwrap())
    );
    assert_eq!(time(&doctor["expiresAt"]).timestamp(), claims["exp"].as_i64().unwrap());
    assert_eq!(time(&doctor["notBefore"]).timestamp(), claims["nbf"].as_i64().unwrap());

    // A patient (empty body too) is a member who never records, in the same room.
    let url = format!("{}{path}", api.stack.base);
    let (status, _, patient) =
        api.stack.send(api.stack.http.post(&url).bearer_auth(api.token("u-pat", "c1", &["patient"]))).await;
    assert_eq!(status, 201, "{patient}");
    let claims = verify_hs256(patient["token"].as_str().unwrap(), &room);
    assert_eq!(
        claims["context"]["user"],
        json!({"id": "u-pat", "name": "Zahra Karimi", "moderator": "false", "affiliation": "member",
               "lobby_bypass": true, "lobby": false}),
        "a room without a lobby holds nobody in Prosody's either"
    );
    assert_eq!(claims["context"]["features"]["recording"], "false");
    assert_eq!(patient["moderator"], false);

    // The signature is real: another secret does not verify it.
    let wrong = jsonwebtoken::DecodingKey::from_secret(b"another secret");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    assert!(jsonwebtoken::decode::<Value>(patient["token"].as_str().unwrap(), &wrong, &v).is_err());
    api.stack.stop().await;
}

#[tokio::test]
async fn tokens_are_refused_before_the_join_window_and_after_the_end() {
    let api = Api::start().await;
    let doctor = api.token("u-doc", "c1", &["doctor"]);
    let later = api.room("c1", body("apt-later", chrono::Duration::hours(2))).await;
    let (status, problem) = api
        .post(&format!("/v1/virtual-care/rooms/{}/tokens", later["roomId"].as_str().unwrap()), &doctor, json!({}))
        .await;
    assert_eq!(status, 409);
    let opens = (time(&later["scheduledStart"]) - chrono::Duration::minutes(15)).to_rfc3339();
    assert!(problem["detail"].as_str().unwrap().contains(&opens), "{problem}");

    let room = api.room("c1", body("apt-ends", soon())).await;
    let base = format!("/v1/virtual-care/rooms/{}", room["roomId"].as_str().unwrap());
    let (status, ended) = api.post(&format!("{base}/end"), &doctor, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(ended["status"], "ended");
    assert!(ended["endedAt"].is_string());
    assert_eq!(ended["durationSeconds"], 0);
    let (status, again) = api.post(&format!("{base}/end"), &doctor, json!({})).await;
    assert_eq!((status, &again["endedAt"]), (200, &ended["endedAt"]), "ending twice changes nothing");
    let (status, problem) = api.post(&format!("{base}/tokens"), &doctor, json!({})).await;
    assert_eq!(status, 409, "{problem}");
    let ended_events =
        api.outbox().await.into_iter().filter(|e| e["type"] == "virtual_care.consultation.ended").count();
    assert_eq!(ended_events, 1);
    api.stack.stop().await;
}

#[tokio::test]
async fn rs256_tokens_signed_by_kms_verify_with_the_published_key() {
    let api = Api::start().await;
    let room = api.room("c1", body("apt-rs", soon())).await;
    let gateway = &api.stack.gateway;
    let mut env = gateway.function("TokenIssueFunction").unwrap().def.environment.clone();
    env.insert("JITSI_SIGNING".into(), "kms-rs256".into());
    env.insert("JITSI_KID".into(), "vcare-test-kid".into());
    let function = token_issue::function(&vcare_runtime::Env::from_map(env.clone()), &api.stack.sdk).await.unwrap();
    use vcare_runtime::Function;
    let response = function.invoke(token_event(&room), Default::default()).await.unwrap();
    assert_eq!(response["statusCode"], 201, "{response}");
    let token = serde_json::from_str::<Value>(response["body"].as_str().unwrap()).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(
        (header.alg, header.kid.as_deref(), header.typ.as_deref()),
        (jsonwebtoken::Algorithm::RS256, Some("vcare-test-kid"), Some("JWT"))
    );
    // Fetch the public key where Prosody's asap_key_server would.
    let s3 = aws_sdk_s3::Client::new(&api.stack.sdk);
    let object = s3
        .get_object()
        .bucket(&env["JITSI_PUBLIC_KEYS_BUCKET"])
        .key(format!("login/{}", vcare_jitsi::asap_key_name("vcare-test-kid")))
        .send()
        .await
        .expect("the public key is published as sha256hex(kid).pem");
    let pem = object.body.collect().await.unwrap().into_bytes();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(&pem).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.leeway = 0;
    v.set_issuer(&["vcare"]);
    v.set_audience(&["jitsi"]);
    let claims = jsonwebtoken::decode::<Value>(&token, &key, &v).unwrap().claims;
    prosody_rules(&claims, &room);
    api.stack.stop().await;
}

fn form(name: &str) -> (&'static str, String) {
    (
        "application/x-www-form-urlencoded",
        format!("name={name}&start_time=2026-11-23T10%3A00%3A00.000Z&mail_owner=focus%40auth.{DOMAIN}"),
    )
}

#[tokio::test]
async fn reservations_allow_only_scheduled_consultations_in_their_window() {
    let api = Api::start().await;
    let room = api.room("c1", body("apt-res", soon())).await;
    let name = room["jitsiRoom"].as_str().unwrap();
    let conf = "/v1/virtual-care/jitsi/reservations/conference";
    for secret in [None, Some("wrong"), Some("")] {
        let (status, _) = api.jitsi("POST", conf, secret, Some(form(name))).await;
        assert_eq!(status, 401, "{secret:?}");
    }
    let s = Some(JITSI_WEBHOOK_SECRET);
    let (status, reservation) = api.jitsi("POST", conf, s, Some(form(name))).await;
    assert_eq!(status, 200, "{reservation}");
    assert_eq!(reservation["id"], name);
    assert_eq!(reservation["name"], name);
    assert_eq!(reservation["mail_owner"], format!("focus@auth.{DOMAIN}"));
    assert_eq!(reservation["start_time"], "2026-11-23T10:00:00.000Z");
    let closes = time(&room["scheduledEnd"]) + chrono::Duration::minutes(30);
    let start = time(&json!("2026-11-23T10:00:00Z"));
    assert_eq!(reservation["duration"].as_i64().unwrap(), (closes - start).num_seconds());
    // Held: 409 with conflict_id, then GET by that id, as mod_reservations does.
    let (status, conflict) = api.jitsi("POST", conf, s, Some(form(name))).await;
    assert_eq!((status, &conflict), (409, &json!({"conflict_id": name})));
    let (status, shown) = api.jitsi("GET", &format!("{conf}/{name}"), s, None).await;
    assert_eq!((status, &shown), (200, &reservation));
    let (status, _) = api.jitsi("DELETE", &format!("{conf}/{name}"), s, None).await;
    assert_eq!(status, 200);
    let (status, _) = api.jitsi("GET", &format!("{conf}/{name}"), s, None).await;
    assert_eq!(status, 404);
    let (status, _) = api.jitsi("POST", conf, s, Some(form(&name.to_uppercase()))).await;
    assert_eq!(status, 200, "room names are case-insensitive");

    // Denied: unknown, not yet open, ended.
    let (status, denied) = api.jitsi("POST", conf, s, Some(form("nosuchroom"))).await;
    assert_eq!(status, 403);
    assert!(denied["message"].as_str().is_some_and(|m| !m.is_empty()));
    let later = api.room("c1", body("apt-res-later", chrono::Duration::hours(3))).await;
    let (status, denied) = api.jitsi("POST", conf, s, Some(form(later["jitsiRoom"].as_str().unwrap()))).await;
    assert_eq!(status, 403);
    assert!(denied["message"].as_str().unwrap().contains("opens at"), "{denied}");
    let doctor = api.token("u-doc", "c1", &["doctor"]);
    api.post(&format!("/v1/virtual-care/rooms/{}/end", later["roomId"].as_str().unwrap()), &doctor, json!({})).await;
    let (status, denied) = api.jitsi("POST", conf, s, Some(form(later["jitsiRoom"].as_str().unwrap()))).await;
    assert_eq!(status, 403);
    assert!(denied["message"].as_str().unwrap().contains("ended"), "{denied}");
    // Malformed.
    let (status, _) =
        api.jitsi("POST", conf, s, Some(("application/x-www-form-urlencoded", "start_time=x".into()))).await;
    assert_eq!(status, 400);
    let (status, _) = api
        .jitsi(
            "POST",
            conf,
            s,
            Some(("application/x-www-form-urlencoded", format!("name={name}&start_time=yesterday"))),
        )
        .await;
    assert_eq!(status, 400);
    api.stack.stop().await;
}

#[tokio::test]
async fn event_sync_tracks_sessions_whatever_the_order_and_repetition() {
    let api = Api::start().await;
    let doctor = api.token("u-doc", "c1", &["doctor"]);
    let t0 = Utc::now().timestamp();
    let joined = |room: &str, at: i64| json!({"room_name": room, "occupant": {"id": "u-doc", "joined_at": at}});
    let destroyed = |room: &str, at: i64| json!({"room_name": room, "created_at": t0, "destroyed_at": at});

    let mut outcomes = Vec::new();
    for (n, order) in [["j1", "j2", "d"], ["d", "j2", "j1"], ["j2", "d", "j1"]].iter().enumerate() {
        let room = api.room("c1", body(&format!("apt-sync-{n}"), soon())).await;
        let name = room["jitsiRoom"].as_str().unwrap().to_uppercase();
        let (status, _) = api.event_sync("room/created", json!({"room_name": name, "created_at": t0})).await;
        assert_eq!(status, 200);
        for step in order.iter().chain(order.iter()) {
            let (status, body) = match *step {
                "j1" => api.event_sync("occupant/joined", joined(&name, t0 + 10)).await,
                "j2" => api.event_sync("occupant/joined", joined(&name, t0 + 40)).await,
                _ => api.event_sync("room/destroyed", destroyed(&name, t0 + 610)).await,
            };
            assert_eq!(status, 200, "{step}: {body}");
        }
        let (status, _) = api
            .event_sync("occupant/left", json!({"room_name": name, "occupant": {"id": "u-doc", "left_at": t0 + 600}}))
            .await;
        assert_eq!(status, 200);
        let (_, now) = api.get(&format!("/v1/virtual-care/rooms/{}", room["roomId"].as_str().unwrap()), &doctor).await;
        assert_eq!(now["status"], "ended", "{order:?}");
        assert_eq!(time(&now["startedAt"]).timestamp(), t0 + 10, "{order:?}");
        assert_eq!(time(&now["endedAt"]).timestamp(), t0 + 610, "{order:?}");
        assert_eq!(now["durationSeconds"], 600, "{order:?}");
        outcomes.push(room["roomId"].as_str().unwrap().to_owned());
    }
    // In order: one started and one ended event for the room.
    let events = api.outbox().await;
    let of = |room: &str, kind: &str| events.iter().filter(|e| e["subject"] == room && e["type"] == kind).count();
    assert_eq!(of(&outcomes[0], "virtual_care.consultation.started"), 1);
    assert_eq!(of(&outcomes[0], "virtual_care.consultation.ended"), 1);
    for room in &outcomes {
        assert_eq!(of(room, "virtual_care.consultation.ended"), 1, "{room}");
    }

    // Refused: no secret, unknown room, malformed, unknown event.
    let path = "/v1/virtual-care/jitsi/events/occupant/joined";
    let (status, _) = api.jitsi("POST", path, None, Some(("application/json", joined("x", t0).to_string()))).await;
    assert_eq!(status, 401);
    let (status, _) = api.event_sync("occupant/joined", joined("nosuchroom", t0)).await;
    assert_eq!(status, 404);
    let (status, _) = api.event_sync("occupant/joined", json!({"occupant": {}})).await;
    assert_eq!(status, 400);
    let (status, _) =
        api.event_sync("occupant/joined", json!({"room_name": "x", "occupant": {"joined_at": "soon"}})).await;
    assert_eq!(status, 400);
    let (status, _) = api.event_sync("room/destroyed", json!({"room_name": "x", "destroyed_at": -5})).await;
    assert_eq!(status, 400);
    api.stack.stop().await;
}

#[tokio::test]
async fn images_are_uploaded_and_read_through_presigned_urls_with_sse_kms() {
    let api = Api::start().await;
    let room = api.room("c1", body("apt-img", soon())).await;
    let path = format!("/v1/virtual-care/rooms/{}/images", room["roomId"].as_str().unwrap());
    let patient = api.token("u-pat", "c1", &["patient"]);
    let bytes = vec![0x89u8; 2048];
    let (status, upload) =
        api.post(&path, &patient, json!({"contentType": "image/png", "sizeBytes": bytes.len()})).await;
    assert_eq!(status, 201, "{upload}");
    let url = upload["uploadUrl"].as_str().unwrap();
    let query: std::collections::HashMap<String, String> =
        form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes()).into_owned().collect();
    let expires: u64 = query["X-Amz-Expires"].parse().unwrap();
    assert!(expires <= 900, "{expires}");
    let signed = &query["X-Amz-SignedHeaders"];
    for header in [
        "content-type",
        "content-length",
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
    ] {
        assert!(signed.split(';').any(|h| h == header), "{header} is bound into the signature: {signed}");
    }
    assert!(time(&upload["expiresAt"]) <= Utc::now() + chrono::Duration::minutes(15));
    let image_id = upload["imageId"].as_str().unwrap();
    let headers = upload["uploadHeaders"].as_object().unwrap();
    // The local endpoint checks presigned signatures as S3 does: the URL
    // cannot put another key, another type, or without the KMS encryption.
    let put = |url: &str, skip: &str, replace: Option<(&str, &str)>| {
        let mut put = api.stack.http.put(url).body(bytes.clone());
        for (k, v) in headers {
            match replace {
                Some((name, value)) if name == k => put = put.header(k, value),
                _ if k == skip => {}
                _ => put = put.header(k, v.as_str().unwrap()),
            }
        }
        put.send()
    };
    let other_key = url.replace(image_id, "img_someoneelsesimage000000");
    for (what, response) in [
        ("another key", put(&other_key, "", None).await.unwrap()),
        ("no SSE-KMS", put(url, "x-amz-server-side-encryption", None).await.unwrap()),
        ("no KMS key id", put(url, "x-amz-server-side-encryption-aws-kms-key-id", None).await.unwrap()),
        ("another type", put(url, "", Some(("content-type", "text/html"))).await.unwrap()),
    ] {
        assert_eq!(response.status(), 403, "{what}");
        assert!(response.text().await.unwrap().contains("SignatureDoesNotMatch"), "{what}");
    }
    let response = put(url, "", None).await.unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());

    let s3 = aws_sdk_s3::Client::new(&api.stack.sdk);
    let bucket = api.stack.gateway.resource("ImageBucket").unwrap().reference.clone();
    let key = format!("rooms/c1/{}/{}", room["roomId"].as_str().unwrap(), upload["imageId"].as_str().unwrap());
    let head = s3.head_object().bucket(&bucket).key(&key).send().await.unwrap();
    assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some("aws:kms"));

    let (status, list) = api.get(&path, &api.token("u-doc", "c1", &["doctor"])).await;
    assert_eq!(status, 200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["imageId"], upload["imageId"]);
    assert_eq!(items[0]["sizeBytes"], 2048);
    let download = items[0]["downloadUrl"].as_str().unwrap();
    let downloaded = api.stack.http.get(download).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(downloaded.as_ref(), bytes.as_slice());
    // Nor can a download URL read another image.
    let other = api.stack.http.get(download.replace(image_id, "img_someoneelsesimage000000")).send().await.unwrap();
    assert_eq!(other.status(), 403);

    for bad in [
        json!({"contentType": "image/gif", "sizeBytes": 10}),
        json!({"contentType": "image/png", "sizeBytes": 0}),
        json!({"contentType": "image/png", "sizeBytes": 20_971_521}),
        json!({"contentType": "image/png"}),
    ] {
        let (status, _) = api.post(&path, &patient, bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
    }
    let shared = api.outbox().await.into_iter().filter(|e| e["type"] == "virtual_care.image.shared").count();
    assert_eq!(shared, 1);
    api.stack.stop().await;
}

#[tokio::test]
async fn history_pages_newest_first_with_a_cursor_only_its_owner_can_use() {
    let api = Api::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let room = api.room("c1", body(&format!("apt-h{i}"), chrono::Duration::hours(i + 1))).await;
        ids.push(room["roomId"].as_str().unwrap().to_owned());
    }
    ids.reverse();
    let patient = api.token("u-pat", "c1", &["patient"]);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".into(),
        };
        let (status, page) = api.get(&format!("/v1/virtual-care/history{query}"), &patient).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        seen.extend(page["items"].as_array().unwrap().iter().map(|r| r["roomId"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(seen, ids, "newest scheduledStart first, each once");
    // The first page's cursor, used by someone else: refused.
    let (_, first) = api.get("/v1/virtual-care/history?limit=2", &patient).await;
    let c = first["nextCursor"].as_str().unwrap();
    let (status, _) =
        api.get(&format!("/v1/virtual-care/history?cursor={c}"), &api.token("u-pat2", "c1", &["patient"])).await;
    assert_eq!(status, 400);
    let (status, _) =
        api.get(&format!("/v1/virtual-care/history?cursor={c}"), &api.token("u-pat", "c2", &["patient"])).await;
    assert_eq!(status, 400);
    let (status, other) = api.get("/v1/virtual-care/history", &api.token("u-pat2", "c1", &["patient"])).await;
    assert_eq!((status, other["items"].as_array().unwrap().len()), (200, 0));
    for bad in ["?limit=0", "?limit=101", "?limit=ten", "?cursor=!!!", "?cursor=e30", "?sort=asc"] {
        let (status, problem) = api.get(&format!("/v1/virtual-care/history{bad}"), &patient).await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
    api.stack.stop().await;
}

/// The hot path's budget: a warm HS256 token costs one DynamoDB read, its
/// audit record written with its `token.issued` event (one transaction,
/// reading nothing first; the clinic is listed for the audit sweep once per
/// container, beside its first record), and no KMS call. Jitsi's app secret is decrypted once, at cold start; the
/// OpenVidu API secret once, by the container's first OpenVidu token (the
/// cold start does not wait for a second provider's secret).
#[tokio::test]
async fn a_warm_token_costs_one_dynamodb_read_and_no_kms_call() {
    let api = Api::start().await;
    let room = api.room("c1", body("apt-cost", soon())).await;
    let proxy = vcare_tests::proxy::CountingProxy::start(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await;
    let sdk = vcare_tests::sdk_via(&proxy.url).await;
    let env = api.stack.gateway.function("TokenIssueFunction").unwrap().def.environment.clone();
    let function = token_issue::function(&vcare_runtime::Env::from_map(env), &sdk).await.unwrap();
    assert_eq!(proxy.snapshot(), std::collections::HashMap::from([("Decrypt".to_owned(), 1)]), "cold start");
    proxy.reset();
    let event = token_event(&room);
    use vcare_runtime::Function;
    for _ in 0..5 {
        let response = function.invoke(event.clone(), Default::default()).await.unwrap();
        assert_eq!(response["statusCode"], 201, "{response}");
    }
    let warm = |reads: usize, writes: usize, lists: usize| {
        let mut want =
            std::collections::HashMap::from([("GetItem".to_owned(), reads), ("TransactWriteItems".to_owned(), writes)]);
        if lists > 0 {
            want.insert("PutItem".to_owned(), lists);
        }
        want
    };
    assert_eq!(proxy.snapshot(), warm(5, 5, 1), "five warm tokens, the clinic listed once, no head read");
    // OpenVidu rooms: the first token opens the secret and makes the
    // LiveKit room (marked prepared); the next is its one read; another
    // room's first token makes its room without opening the secret again.
    let mut ov = body("apt-cost-ov", soon());
    ov["lobby"] = json!(false);
    let first = api.room(vcare_tests::OPENVIDU_CLINIC, ov.clone()).await;
    ov["appointmentId"] = json!("apt-cost-ov-2");
    let second = api.room(vcare_tests::OPENVIDU_CLINIC, ov).await;
    let tokens = |room: &Value| {
        let event = token_event(room);
        let function = &function;
        async move {
            let response = function.invoke(event, Default::default()).await.unwrap();
            assert_eq!(response["statusCode"], 201, "{response}");
        }
    };
    proxy.reset();
    tokens(&first).await;
    let opened = proxy.snapshot();
    assert_eq!(opened.get("Decrypt"), Some(&1), "the OpenVidu secret, on first use: {opened:?}");
    proxy.reset();
    tokens(&first).await;
    assert_eq!(proxy.snapshot(), warm(1, 1, 0), "warm, prepared, the clinic listed already");
    proxy.reset();
    tokens(&second).await;
    assert_eq!(proxy.snapshot().get("Decrypt"), None, "opened once per container");
    api.stack.stop().await;
}

/// The token-issue sample event, for `room`, as its clinic's doctor u-doc.
fn token_event(room: &Value) -> Value {
    sample_event("token-issue/issue.json", room)
}

/// A sample event from events/, for `room`, as its clinic's doctor u-doc.
fn sample_event(file: &str, room: &Value) -> Value {
    let sample = std::fs::read_to_string(vcare_tests::root().join("events").join(file))
        .unwrap()
        .replace("rm_samplesampleroom000000000", room["roomId"].as_str().unwrap());
    let mut event: Value = serde_json::from_str(&sample).unwrap();
    vcare_tests::set_clinic(&mut event, room["clinicId"].as_str().unwrap());
    event
}

/// A stand-in for Prosody's mod_muc_end_meeting: fails the first `failures`
/// calls with 503, then answers 200; records each call's query and token.
async fn end_meeting_stand_in(failures: usize) -> (String, std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>) {
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode};
    type Calls = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;
    let calls: Calls = Default::default();
    async fn handle(
        State((calls, failures)): State<(Calls, usize)>,
        Query(q): Query<std::collections::HashMap<String, String>>,
        headers: HeaderMap,
    ) -> StatusCode {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let mut calls = calls.lock().unwrap();
        calls.push((q.get("conference").cloned().unwrap_or_default(), auth));
        if calls.len() <= failures { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
    }
    let app =
        axum::Router::new().route("/end-meeting", axum::routing::post(handle)).with_state((calls.clone(), failures));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/end-meeting", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

#[tokio::test]
async fn ending_a_room_ends_its_jitsi_meeting_retrying_and_keeping_what_failed() {
    let api = Api::start().await;
    let s3 = aws_sdk_s3::Client::new(&api.stack.sdk);
    use vcare_runtime::Function;
    for (failures, expect_calls, pending) in [(2usize, 3usize, false), (100, 3, true)] {
        let (url, calls) = end_meeting_stand_in(failures).await;
        let mut env = api.stack.gateway.function("RoomEndFunction").unwrap().def.environment.clone();
        env.insert("JITSI_END_MEETING_URL".into(), url);
        env.insert("JITSI_END_BACKOFF_MS".into(), "10".into());
        let function = room_end::function(&vcare_runtime::Env::from_map(env.clone()), &api.stack.sdk).await.unwrap();
        let room = api.room("c1", body(&format!("apt-jend-{failures}"), soon())).await;
        let response = function.invoke(sample_event("room-end/end.json", &room), Default::default()).await.unwrap();
        assert_eq!(response["statusCode"], 200, "ended in vcare whatever Jitsi says: {response}");
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.len(), expect_calls);
        let jitsi = room["jitsiRoom"].as_str().unwrap();
        assert_eq!(calls[0].0, format!("{jitsi}@conference.{DOMAIN}"));
        // The system token verifies with the key published for mod_muc_end_meeting.
        let token = calls[0].1.strip_prefix("Bearer ").unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("vcare-system-1"));
        let object = s3
            .get_object()
            .bucket(&env["JITSI_PUBLIC_KEYS_BUCKET"])
            .key(format!("system/{}", vcare_jitsi::asap_key_name("vcare-system-1")))
            .send()
            .await
            .unwrap();
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(&object.body.collect().await.unwrap().into_bytes()).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_issuer(&["vcare"]);
        v.set_audience(&["jitsi"]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &v).unwrap().claims;
        assert_eq!(claims["room"], "*");
        // A failure that outlived the retries is kept under the room.
        let room_id = room["roomId"].as_str().unwrap();
        let kept = vcare_tests::rooms::pending_end(&api.stack, "c1", room_id).await;
        assert_eq!(kept.is_some(), pending, "failures={failures}");
        if !pending {
            continue;
        }
        // The kept failure is retried by the scheduler's sweep once Prosody
        // answers again, with a system token of the moment it calls.
        let (url, calls) = end_meeting_stand_in(0).await;
        let mut env = api.stack.gateway.function("ReminderSchedulerFunction").unwrap().def.environment.clone();
        env.insert("JITSI_END_MEETING_URL".into(), url);
        let sweep = reminder_scheduler::scheduler(&vcare_runtime::Env::from_map(env), &api.stack.sdk).await.unwrap();
        assert_eq!(sweep.run(Utc::now()).await.unwrap().rooms, 0, "not due yet");
        assert_eq!(sweep.run(Utc::now() + chrono::Duration::minutes(2)).await.unwrap().rooms, 1);
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, format!("{jitsi}@conference.{DOMAIN}"));
        let token = calls[0].1.strip_prefix("Bearer ").unwrap();
        let iat = jsonwebtoken::dangerous::insecure_decode::<Value>(token).unwrap().claims["iat"].as_i64().unwrap();
        assert!((iat - Utc::now().timestamp()).abs() < 30, "a system token of now, not of the sweep's minute");
        let still = vcare_tests::rooms::pending_end(&api.stack, "c1", room_id).await;
        assert!(still.is_none(), "no longer pending");
    }
    api.stack.stop().await;
}

#[tokio::test]
async fn bad_token_settings_fail_the_cold_start_by_name() {
    let api = Api::start().await;
    let base = api.stack.gateway.function("TokenIssueFunction").unwrap().def.environment.clone();
    for (name, value) in [
        ("JITSI_SIGNING", "rot13"),
        ("JITSI_APP_ID", ""),
        ("JITSI_DOMAIN", "https://meet/x"),
        ("JOIN_WINDOW_MINUTES", "-5"),
    ] {
        let mut env = base.clone();
        env.insert(name.into(), value.into());
        let err = token_issue::function(&vcare_runtime::Env::from_map(env), &api.stack.sdk).await.err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains(name), "{name}={value}: {text:?}");
    }
    // A ciphertext that is not the app secret's (another purpose) does not decrypt.
    let mut env = base.clone();
    let events = api.stack.gateway.function("JitsiEventsFunction").unwrap().def.environment.clone();
    env.insert("JITSI_APP_SECRET_CIPHERTEXT".into(), events["JITSI_WEBHOOK_SECRET_CIPHERTEXT"].clone());
    assert!(token_issue::function(&vcare_runtime::Env::from_map(env), &api.stack.sdk).await.is_err());
    // The OpenVidu secret is opened on first use: a wrong one starts, then
    // each OpenVidu token is a 503 problem naming no secret, and Jitsi
    // rooms are served as before.
    let mut env = base.clone();
    env.insert("OPENVIDU_API_SECRET_CIPHERTEXT".into(), events["JITSI_WEBHOOK_SECRET_CIPHERTEXT"].clone());
    let function = token_issue::function(&vcare_runtime::Env::from_map(env), &api.stack.sdk).await.unwrap();
    let mut ov = body("apt-bad-ov-secret", soon());
    ov["lobby"] = json!(false);
    let ov = api.room(vcare_tests::OPENVIDU_CLINIC, ov).await;
    let jitsi = api.room("c1", body("apt-bad-ov-secret-j", soon())).await;
    use vcare_runtime::Function;
    for _ in 0..2 {
        let response = function.invoke(token_event(&ov), Default::default()).await.unwrap();
        assert_eq!(response["statusCode"], 503, "{response}");
        let problem: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(problem["status"], 503);
        assert!(!problem.to_string().contains("secret"), "{problem}");
    }
    let response = function.invoke(token_event(&jitsi), Default::default()).await.unwrap();
    assert_eq!(response["statusCode"], 201, "{response}");
    api.stack.stop().await;
}

#[tokio::test]
async fn a_bad_issue_report_is_a_400_problem_that_writes_nothing() {
    let api = Api::start().await;
    let room = api.room("c1", body("apt-issue-bad", soon())).await;
    let path = format!("/v1/virtual-care/rooms/{}/issues", room["roomId"].as_str().unwrap());
    let patient = api.token("u-pat", "c1", &["patient"]);
    let reported = async || {
        api.outbox().await.into_iter().filter(|e| e["type"] == "virtual_care.technical_issue.reported").count()
    };
    for bad in [
        json!({"issueType": "smell"}),
        json!({}),
        json!({"issueType": "audio", "severity": "high"}),
        json!({"issueType": "audio", "description": "a".repeat(2001)}),
        json!({"issueType": 7}),
        json!("audio"),
    ] {
        let (status, content_type, out) = api.call("POST", &path, Some(&patient), Some(bad.clone())).await;
        assert_eq!((status, content_type.as_str()), (400, "application/problem+json"), "{bad}: {out}");
        assert!(out["detail"].as_str().is_some_and(|d| !d.is_empty()), "{out}");
    }
    assert_eq!(reported().await, 0, "nothing written");
    let (status, out) = api.post(&path, &patient, json!({"issueType": "audio", "description": "ی".repeat(2000)})).await;
    assert_eq!(status, 202, "2,000 characters, not bytes: {out}");
    assert_eq!(reported().await, 1);
    api.stack.stop().await;
}
