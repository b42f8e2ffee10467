//! A LiveKit (OpenVidu 3) stand-in: RoomService and Egress over Twirp
//! JSON as LiveKit serves them (`POST /twirp/livekit.<Service>/<Method>`, snake_case
//! answers, int64 as strings, Twirp errors `{"code", "msg"}`), every call's
//! bearer token checked against the grant that call needs, and webhooks
//! signed as LiveKit signs them (a JWT of the API key, no `sub`, whose
//! `sha256` is the base64 SHA-256 of the body) — made here with
//! `jsonwebtoken`, not vcare's signer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

pub const API_KEY: &str = "vcare-test-key";
/// The gateway's development value of `OpenViduApiSecretCiphertext`.
pub const API_SECRET: &str = "vcare-local-openvidu-api-secret";

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// The verified token's `video` grant.
    pub grant: Value,
    pub body: Value,
}

#[derive(Default)]
struct World {
    rooms: BTreeMap<String, LiveRoom>,
    /// In the order they were started.
    egresses: Vec<Egress>,
    calls: Vec<Call>,
    /// Answers to give before serving normally: (method, status).
    failures: Vec<(String, u16)>,
    /// Calls done, whose answer is then lost (a 503 in its place).
    lost_answers: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LiveRoom {
    pub settings: Value,
    pub participants: Vec<String>,
    pub created: i64,
}

/// An egress as the stand-in keeps it: the request vcare made, and its
/// `EgressInfo` (snake_case, int64 as strings) as LiveKit answers it.
#[derive(Debug, Clone)]
pub struct Egress {
    pub request: Value,
    pub info: Value,
}

/// How an egress ends.
pub enum EgressEnd<'a> {
    /// The MP4's bytes are uploaded where the request said, then complete.
    Complete(&'a [u8]),
    /// `EGRESS_FAILED`, `EGRESS_ABORTED` or `EGRESS_LIMIT_REACHED`, with
    /// LiveKit's error.
    Failed(&'a str, &'a str),
}

#[derive(Clone)]
pub struct LiveKit {
    pub url: String,
    world: Arc<Mutex<World>>,
}

fn twirp_error(status: StatusCode, code: &str, msg: &str) -> Response {
    (status, axum::Json(json!({"code": code, "msg": msg}))).into_response()
}

/// Either spelling protojson accepts.
fn field<'a>(body: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    body.get(camel).or_else(|| body.get(snake))
}

async fn rpc(
    State(world): State<Arc<Mutex<World>>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&[API_KEY]);
    validation.validate_aud = false;
    validation.validate_nbf = true;
    let key = jsonwebtoken::DecodingKey::from_secret(API_SECRET.as_bytes());
    let Ok(claims) = jsonwebtoken::decode::<Value>(token, &key, &validation) else {
        return twirp_error(StatusCode::UNAUTHORIZED, "unauthenticated", "invalid token");
    };
    let grant = claims.claims["video"].clone();
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return twirp_error(StatusCode::BAD_REQUEST, "malformed", "body");
    };
    let room_name = field(&body, "room", "room").and_then(Value::as_str).unwrap_or_default().to_owned();
    let allowed = match method.as_str() {
        "CreateRoom" | "DeleteRoom" => grant["roomCreate"] == true,
        "ListRooms" => grant["roomList"] == true,
        "ListParticipants" | "RemoveParticipant" => grant["roomAdmin"] == true && grant["room"] == room_name.as_str(),
        "StartRoomCompositeEgress" | "StopEgress" | "ListEgress" => grant["roomRecord"] == true,
        _ => return twirp_error(StatusCode::NOT_FOUND, "bad_route", "no such method"),
    };
    let mut w = world.lock().unwrap();
    w.calls.push(Call { method: method.clone(), grant: grant.clone(), body: body.clone() });
    if !allowed {
        return twirp_error(StatusCode::FORBIDDEN, "permission_denied", "permissions denied");
    }
    if let Some(i) = w.failures.iter().position(|(m, _)| *m == method) {
        let (_, status) = w.failures.remove(i);
        return twirp_error(StatusCode::from_u16(status).unwrap(), "unavailable", "scripted failure");
    }
    let now = chrono::Utc::now().timestamp();
    let lose = w.lost_answers.iter().position(|m| *m == method).map(|i| w.lost_answers.remove(i)).is_some();
    let answer = serve(&mut w, &method, &body, &room_name, now);
    if lose {
        return twirp_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the answer was lost");
    }
    answer
}

fn serve(w: &mut World, method: &str, body: &Value, room_name: &str, now: i64) -> Response {
    match method {
        "CreateRoom" => {
            let name = field(body, "name", "name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let room = w.rooms.entry(name.clone()).or_insert_with(|| LiveRoom {
                settings: body.clone(),
                participants: vec![],
                created: now,
            });
            let settings = room.settings.clone();
            let number = |c: &str, s: &str| field(&settings, c, s).cloned().unwrap_or(json!(0));
            axum::Json(json!({
                "sid": format!("RM_{name}"),
                "name": name,
                "empty_timeout": number("emptyTimeout", "empty_timeout"),
                "departure_timeout": number("departureTimeout", "departure_timeout"),
                "max_participants": number("maxParticipants", "max_participants"),
                "creation_time": room.created.to_string(),
                "num_participants": room.participants.len(),
            }))
            .into_response()
        }
        "DeleteRoom" => match w.rooms.remove(room_name) {
            Some(_) => axum::Json(json!({})).into_response(),
            None => twirp_error(StatusCode::NOT_FOUND, "not_found", "room not found"),
        },
        "ListParticipants" => match w.rooms.get(room_name) {
            Some(room) => axum::Json(json!({"participants": room.participants.iter().map(|p| json!({
                "sid": format!("PA_{p}"), "identity": p, "state": "ACTIVE", "joined_at": now.to_string()
            })).collect::<Vec<_>>()}))
            .into_response(),
            None => twirp_error(StatusCode::NOT_FOUND, "not_found", "room not found"),
        },
        "RemoveParticipant" => {
            let identity = body["identity"].as_str().unwrap_or_default().to_owned();
            match w.rooms.get_mut(room_name) {
                Some(room) if room.participants.contains(&identity) => {
                    room.participants.retain(|p| *p != identity);
                    axum::Json(json!({})).into_response()
                }
                _ => twirp_error(StatusCode::NOT_FOUND, "not_found", "participant not found"),
            }
        }
        "StartRoomCompositeEgress" => {
            let room = body["room_name"].as_str().unwrap_or_default().to_owned();
            let file = &body["file_outputs"][0];
            if !w.rooms.contains_key(&room) {
                return twirp_error(StatusCode::NOT_FOUND, "not_found", "requested room does not exist");
            }
            if file["file_type"] != "MP4" || file["filepath"].as_str().is_none_or(str::is_empty) {
                return twirp_error(StatusCode::BAD_REQUEST, "invalid_argument", "file output");
            }
            let id = format!("EG_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            let info = json!({
                "egress_id": id, "room_id": format!("RM_{room}"), "room_name": room, "status": "EGRESS_STARTING",
                "started_at": "0", "updated_at": (now * 1_000_000_000).to_string(),
                "file_results": [{"filename": file["filepath"]}],
            });
            w.egresses.push(Egress { request: body.clone(), info: info.clone() });
            axum::Json(info).into_response()
        }
        "StopEgress" => {
            let id = body["egress_id"].as_str().unwrap_or_default();
            match w.egresses.iter_mut().find(|e| e.info["egress_id"] == id) {
                Some(e) if matches!(e.info["status"].as_str(), Some("EGRESS_STARTING" | "EGRESS_ACTIVE")) => {
                    e.info["status"] = json!("EGRESS_ENDING");
                    axum::Json(e.info.clone()).into_response()
                }
                Some(_) => twirp_error(StatusCode::PRECONDITION_FAILED, "failed_precondition", "egress is not active"),
                None => twirp_error(StatusCode::NOT_FOUND, "not_found", "egress does not exist"),
            }
        }
        "ListEgress" => {
            let room = body["room_name"].as_str().unwrap_or_default();
            let items: Vec<Value> = w
                .egresses
                .iter()
                .filter(|e| room.is_empty() || e.info["room_name"] == room)
                .map(|e| e.info.clone())
                .collect();
            axum::Json(json!({"items": items})).into_response()
        }
        _ => axum::Json(json!({"rooms": []})).into_response(),
    }
}

impl LiveKit {
    pub async fn start() -> Self {
        let world = Arc::new(Mutex::new(World::default()));
        let app = Router::new()
            .route("/", get(|| async { "OK" }))
            .route("/twirp/livekit.RoomService/{method}", post(rpc))
            .route("/twirp/livekit.Egress/{method}", post(rpc))
            .with_state(world.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, world }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.world.lock().unwrap().calls.clone()
    }

    pub fn room(&self, name: &str) -> Option<LiveRoom> {
        self.world.lock().unwrap().rooms.get(name).cloned()
    }

    pub fn egress(&self, egress_id: &str) -> Egress {
        self.egresses().into_iter().find(|e| e.info["egress_id"] == egress_id).expect("an egress the stand-in started")
    }

    pub fn egresses(&self) -> Vec<Egress> {
        self.world.lock().unwrap().egresses.clone()
    }

    /// The egress begins recording: its state, and the `egress_started` webhook.
    pub fn egress_started(&self, egress_id: &str) -> Value {
        let mut w = self.world.lock().unwrap();
        let e =
            w.egresses.iter_mut().find(|e| e.info["egress_id"] == egress_id).expect("an egress the stand-in started");
        e.info["status"] = json!("EGRESS_ACTIVE");
        e.info["started_at"] = json!((chrono::Utc::now().timestamp() * 1_000_000_000).to_string());
        json!({"event": "egress_started", "id": format!("EV_{}", uuid::Uuid::new_v4().simple()),
               "createdAt": chrono::Utc::now().timestamp().to_string(), "egressInfo": camel(&e.info)})
    }

    /// The egress ends as `end` says, lasting `seconds`: a complete one
    /// uploads its bytes to the bucket its request named (through that
    /// S3 endpoint, as LiveKit's uploader does, naming no encryption: the
    /// bucket's default applies). Its state, and the `egress_ended` webhook.
    pub async fn egress_ended(&self, egress_id: &str, end: EgressEnd<'_>, seconds: u64) -> Value {
        let request = self.egress(egress_id).request;
        let file = &request["file_outputs"][0];
        let path = file["filepath"].as_str().unwrap().to_owned();
        let (status, error, size) = match end {
            EgressEnd::Complete(bytes) => {
                let s3 = &file["s3"];
                let mut conf = aws_sdk_s3::config::Builder::new()
                    .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                    .region(aws_sdk_s3::config::Region::new(s3["region"].as_str().unwrap().to_owned()))
                    .credentials_provider(aws_sdk_s3::config::Credentials::new(
                        "egress", "egress", None, None, "egress",
                    ))
                    .force_path_style(s3["force_path_style"] == true);
                if let Some(endpoint) = s3["endpoint"].as_str() {
                    conf = conf.endpoint_url(endpoint);
                }
                aws_sdk_s3::Client::from_conf(conf.build())
                    .put_object()
                    .bucket(s3["bucket"].as_str().unwrap())
                    .key(&path)
                    .content_type("video/mp4")
                    .body(bytes.to_vec().into())
                    .send()
                    .await
                    .expect("the egress upload");
                ("EGRESS_COMPLETE", None, Some(bytes.len()))
            }
            EgressEnd::Failed(status, error) => (status, Some(error.to_owned()), None),
        };
        let now_ns = chrono::Utc::now().timestamp() * 1_000_000_000;
        let mut w = self.world.lock().unwrap();
        let e = w.egresses.iter_mut().find(|e| e.info["egress_id"] == egress_id).unwrap();
        e.info["status"] = json!(status);
        e.info["ended_at"] = json!(now_ns.to_string());
        if let Some(error) = error {
            e.info["error"] = json!(error);
        }
        e.info["file_results"] = json!([{
            "filename": path, "started_at": (now_ns - seconds as i64 * 1_000_000_000).to_string(),
            "ended_at": now_ns.to_string(), "duration": (seconds * 1_000_000_000).to_string(),
            "size": size.unwrap_or(0).to_string(), "location": format!("s3://{path}"),
        }]);
        json!({"event": "egress_ended", "id": format!("EV_{}", uuid::Uuid::new_v4().simple()),
               "createdAt": (now_ns / 1_000_000_000).to_string(), "egressInfo": camel(&e.info)})
    }

    /// The next call of `method` is done, and its answer lost (a 503).
    pub fn lose_answer(&self, method: &str) {
        self.world.lock().unwrap().lost_answers.push(method.to_owned());
    }

    /// The next `times` calls of `method` answer `status`.
    pub fn fail(&self, method: &str, status: u16, times: usize) {
        let mut w = self.world.lock().unwrap();
        w.failures.extend(std::iter::repeat_n((method.to_owned(), status), times));
    }

    /// A participant connects: in the room, and the webhook LiveKit sends.
    pub fn join(&self, room: &str, identity: &str, joined_at: i64) -> Value {
        if let Some(r) = self.world.lock().unwrap().rooms.get_mut(room) {
            r.participants.push(identity.to_owned());
        }
        json!({
            "event": "participant_joined", "id": format!("EV_{}", uuid::Uuid::new_v4().simple()),
            "createdAt": joined_at.to_string(),
            "room": {"sid": format!("RM_{room}"), "name": room},
            "participant": {"sid": format!("PA_{identity}"), "identity": identity, "state": "ACTIVE", "joinedAt": joined_at.to_string()},
        })
    }

    pub fn leave(&self, room: &str, identity: &str) -> Value {
        if let Some(r) = self.world.lock().unwrap().rooms.get_mut(room) {
            r.participants.retain(|p| p != identity);
        }
        json!({"event": "participant_left", "id": format!("EV_{}", uuid::Uuid::new_v4().simple()),
               "room": {"name": room}, "participant": {"identity": identity}})
    }

    /// The room closes (everyone left, departure timeout passed).
    pub fn finish(&self, room: &str, at: i64) -> Value {
        self.world.lock().unwrap().rooms.remove(room);
        json!({"event": "room_finished", "id": format!("EV_{}", uuid::Uuid::new_v4().simple()),
               "createdAt": at.to_string(), "room": {"sid": format!("RM_{room}"), "name": room}})
    }
}

/// protojson's lowerCamelCase, as LiveKit's webhooks are written (its
/// Twirp answers here keep the proto names).
fn camel(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let mut out = String::new();
                    let mut up = false;
                    for c in k.chars() {
                        if c == '_' {
                            up = true;
                        } else if up {
                            out.extend(c.to_uppercase());
                            up = false;
                        } else {
                            out.push(c);
                        }
                    }
                    (out, camel(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(camel).collect()),
        other => other.clone(),
    }
}

/// The webhook as LiveKit sends it: the body's bytes and its
/// `Authorization` (signed with `secret`, valid from `at` for 5 minutes).
pub fn signed_webhook(event: &Value, secret: &str, at: i64) -> (String, String) {
    let body = event.to_string();
    let sha = base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes()));
    let claims = json!({"iss": API_KEY, "nbf": at, "exp": at + 300, "sha256": sha});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign");
    (body, token)
}
