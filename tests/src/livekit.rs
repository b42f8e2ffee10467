//! A LiveKit (OpenVidu 3) stand-in: RoomService over Twirp JSON as LiveKit
//! serves it (`POST /twirp/livekit.RoomService/<Method>`, snake_case
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
    calls: Vec<Call>,
    /// Answers to give before serving normally: (method, status).
    failures: Vec<(String, u16)>,
}

#[derive(Debug, Clone)]
pub struct LiveRoom {
    pub settings: Value,
    pub participants: Vec<String>,
    pub created: i64,
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
    match method.as_str() {
        "CreateRoom" => {
            let name = field(&body, "name", "name").and_then(Value::as_str).unwrap_or_default().to_owned();
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
        "DeleteRoom" => match w.rooms.remove(&room_name) {
            Some(_) => axum::Json(json!({})).into_response(),
            None => twirp_error(StatusCode::NOT_FOUND, "not_found", "room not found"),
        },
        "ListParticipants" => match w.rooms.get(&room_name) {
            Some(room) => axum::Json(json!({"participants": room.participants.iter().map(|p| json!({
                "sid": format!("PA_{p}"), "identity": p, "state": "ACTIVE", "joined_at": now.to_string()
            })).collect::<Vec<_>>()}))
            .into_response(),
            None => twirp_error(StatusCode::NOT_FOUND, "not_found", "room not found"),
        },
        "RemoveParticipant" => {
            let identity = body["identity"].as_str().unwrap_or_default().to_owned();
            match w.rooms.get_mut(&room_name) {
                Some(room) if room.participants.contains(&identity) => {
                    room.participants.retain(|p| *p != identity);
                    axum::Json(json!({})).into_response()
                }
                _ => twirp_error(StatusCode::NOT_FOUND, "not_found", "participant not found"),
            }
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
