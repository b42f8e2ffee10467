//! `notification-create`: `POST /v1/communication/notifications` (service,
//! doctor, nurse, clinic-admin), `Idempotency-Key` required.
//!
//! Like AWS Lambda Powertools' idempotency: the key (hashed) is remembered
//! with a hash of the request and an expiry; the same key and body answer the
//! first response and nothing is sent twice; another body is 409; a
//! duplicate racing the first is 409. The notification, its idempotency
//! record and its `accepted` event are one transaction. Personal data and the
//! rendered text are sealed before they are stored; templates are rendered
//! here, so a missing variable is a 422 now rather than a failed send later.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use vcare_aws::SdkConfig;
use vcare_comms::{Comms, CommsError, timezone_ok};
use vcare_domain::events::{DomainEvent, NOTIFICATION_ACCEPTED};
use vcare_domain::ids;
use vcare_domain::notification::{
    MAX_IDEMPOTENCY_KEY, MaskedRecipient, Message, NewNotification, Notification, NotificationRequest, Status,
    token_hash,
};
use vcare_domain::templates::{self, Rendered};
use vcare_http::{ApiJson, Caller, HttpFunction, Problem, Role, rejected, require_role, store_problem};
use vcare_runtime::Env;
use vcare_store::Accepted;

pub const SENDERS: &[Role] = &[Role::Service, Role::Doctor, Role::Nurse, Role::ClinicAdmin];

pub fn router(comms: Arc<Comms>) -> Router {
    Router::new().route("/v1/communication/notifications", post(accept)).with_state(comms)
}

pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    Ok(HttpFunction::new(router(Arc::new(Comms::from_env(env, sdk)?))))
}

fn sha256_hex(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, Problem> {
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| Problem::bad_request("the Idempotency-Key header is required"))?
        .to_str()
        .map_err(|_| Problem::bad_request("Idempotency-Key: printable ASCII"))?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::bad_request(format!(
            "Idempotency-Key: 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )));
    }
    Ok(key.to_owned())
}

/// The text each channel will carry.
fn render(n: &NewNotification) -> Result<BTreeMap<vcare_domain::notification::Channel, Rendered>, Problem> {
    let mut out = BTreeMap::new();
    for channel in &n.channels {
        let rendered = match &n.message {
            Message::Template { name, variables } => {
                templates::render(name, n.recipient.locale.as_deref(), *channel, variables).map_err(rejected)?
            }
            Message::Content(c) => Rendered { subject: c.subject.clone(), body: c.body.clone() },
        };
        out.insert(*channel, rendered);
    }
    Ok(out)
}

fn unavailable(e: CommsError) -> Problem {
    tracing::error!(error = %e, "sealing or queueing failed");
    Problem::service_unavailable("the notification service is unavailable; try again")
}

async fn accept(
    State(comms): State<Arc<Comms>>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NotificationRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    require_role(&caller, SENDERS)?;
    let key = idempotency_key(&headers)?;
    let now = chrono::Utc::now();
    let request = body.validate(now, timezone_ok).map_err(rejected)?;
    let messages = render(&request)?;
    let request_hash = sha256_hex(&serde_json::to_vec(&request).unwrap_or_default());
    let mut request = request;
    if !request.recipient.push_tokens.is_empty() {
        // Tokens a provider already declared dead are left out.
        let hashes: Vec<String> = request.recipient.push_tokens.iter().map(token_hash).collect();
        let dead = comms.store.dead_tokens(&caller.clinic_id, &hashes).await.map_err(store_problem)?;
        request.recipient.push_tokens.retain(|t| !dead.contains(&token_hash(t)));
    }
    let key_hash = sha256_hex(key.as_bytes());
    let clinic = &caller.clinic_id;
    let id = ids::prefixed("ntf");
    let notification = Notification {
        notification_id: id.clone(),
        clinic_id: clinic.clone(),
        status: Status::Queued,
        channels: request.channels.clone(),
        priority: request.priority,
        send_at: request.send_at,
        created_at: now,
        updated_at: now,
        channel: None,
        provider: None,
        attempts: Vec::new(),
        recipient: MaskedRecipient::of(&request.recipient),
        timezone: request.recipient.timezone.clone(),
        sealed_recipient: comms.seal_recipient(clinic, &id, &request.recipient).await.map_err(unavailable)?,
        sealed_messages: comms.seal_messages(clinic, &id, &messages).await.map_err(unavailable)?,
        delivery: Default::default(),
        awaiting_receipt_since: None,
    };
    let event = DomainEvent::new(NOTIFICATION_ACCEPTED, clinic, &id, now, notification.summary());
    let delay = request.send_at.map_or(0, |at| (at - now).num_seconds());
    let accepted = comms
        .store
        .accept(&notification, &key_hash, &request_hash, &event, now, comms.config.idempotency)
        .await
        .map_err(store_problem)?;
    let in_progress = || Problem::conflict("a request with this Idempotency-Key is in progress");
    let id = match accepted {
        Accepted::New => {
            comms.enqueue(clinic, &id, delay).await.map_err(unavailable)?;
            id
        }
        Accepted::Existing { notification_id, same_request: true } => {
            // A replay: queue it again if it is still queued (its first
            // enqueue may have failed; dispatch claims attempts, so a second
            // message sends nothing twice). Not visible yet: the first
            // request's transaction is still landing.
            let (current, _) =
                comms.store.get(clinic, &notification_id).await.map_err(store_problem)?.ok_or_else(in_progress)?;
            if current.status == Status::Queued {
                comms.enqueue(clinic, &notification_id, delay).await.map_err(unavailable)?;
            }
            notification_id
        }
        Accepted::Existing { same_request: false, .. } => {
            return Err(Problem::conflict("this Idempotency-Key was used with another request"));
        }
        Accepted::InProgress => return Err(in_progress()),
    };
    // The first response, whatever has happened since (GET tells the rest).
    Ok((StatusCode::ACCEPTED, Json(json!({"notificationId": id, "status": Status::Queued}))))
}
