//! `image-share`: `POST /v1/virtual-care/rooms/{roomId}/images` gives a
//! participant a presigned S3 PUT (at most 15 minutes) whose signature binds
//! the content type, the exact length and SSE-KMS with the images key — an
//! upload without them, or to another key, fails. `GET` on the same path
//! lists the room's images with short-lived download URLs. Participants only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::ServerSideEncryption;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_care::{Care, participant_only, rejected, store_problem};
use vcare_domain::events::{DomainEvent, IMAGE_SHARED};
use vcare_domain::ids;
use vcare_domain::requests::UploadRequest;
use vcare_http::{ApiJson, Caller, HttpFunction, Problem};
use vcare_runtime::Env;

const MAX_UPLOAD_SECONDS: u64 = 15 * 60;

pub struct Images {
    care: Care,
    s3: aws_sdk_s3::Client,
    bucket: String,
    key_id: String,
    upload_for: Duration,
    download_for: Duration,
}

pub fn router(images: Arc<Images>) -> Router {
    Router::new().route("/v1/virtual-care/rooms/{room_id}/images", post(upload).get(list)).with_state(images)
}

/// `IMAGE_BUCKET`, `IMAGE_KEY_ID` (the KMS key uploads must use),
/// `UPLOAD_URL_SECONDS` (default and at most 900), `DOWNLOAD_URL_SECONDS`
/// (default 300).
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let upload = env.bounded("UPLOAD_URL_SECONDS", MAX_UPLOAD_SECONDS, 1, MAX_UPLOAD_SECONDS)?;
    let download = env.bounded("DOWNLOAD_URL_SECONDS", 300, 1, 3600)?;
    let images = Images {
        care: Care::from_env(env, sdk)?,
        s3: aws_sdk_s3::Client::new(sdk),
        bucket: env.required("IMAGE_BUCKET")?,
        key_id: env.required("IMAGE_KEY_ID")?,
        upload_for: Duration::from_secs(upload),
        download_for: Duration::from_secs(download),
    };
    Ok(HttpFunction::new(router(Arc::new(images))))
}

fn presign_failed<E: std::fmt::Display>(e: E) -> Problem {
    tracing::error!(error = %e, "presigning failed");
    Problem::service_unavailable("image storage is unavailable; try again")
}

async fn upload(
    State(images): State<Arc<Images>>,
    caller: Caller,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<UploadRequest>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let body = body.validate().map_err(rejected)?;
    let (room, standing) = images.care.room_for(&caller, &room_id).await?;
    participant_only(standing)?;
    let image_id = ids::prefixed("img");
    let key = format!("rooms/{}/{}/{image_id}", room.clinic_id, room.room_id);
    let now = images.care.now();
    let presigned = images
        .s3
        .put_object()
        .bucket(&images.bucket)
        .key(&key)
        .content_type(body.content_type.as_str())
        .content_length(body.size_bytes as i64)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&images.key_id)
        .presigned(PresigningConfig::expires_in(images.upload_for).map_err(presign_failed)?)
        .await
        .map_err(presign_failed)?;
    let headers: serde_json::Map<String, Value> = presigned
        .headers()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    let expires_at = now + chrono::Duration::from_std(images.upload_for).unwrap_or_default();
    let event = DomainEvent::new(
        IMAGE_SHARED,
        &room.clinic_id,
        &room.room_id,
        now,
        json!({"roomId": room.room_id, "imageId": image_id, "contentType": body.content_type.as_str(),
               "sizeBytes": body.size_bytes, "sharedBy": caller.user_id}),
    );
    let record = HashMap::from([
        ("imageId".to_owned(), AttributeValue::S(image_id.clone())),
        ("contentType".to_owned(), AttributeValue::S(body.content_type.as_str().to_owned())),
        ("sizeBytes".to_owned(), AttributeValue::N(body.size_bytes.to_string())),
        ("s3Key".to_owned(), AttributeValue::S(key)),
        ("sharedBy".to_owned(), AttributeValue::S(caller.user_id.clone())),
        ("createdAt".to_owned(), AttributeValue::S(now.to_rfc3339())),
    ]);
    images.care.store.put_child(&room, &format!("IMAGE#{image_id}"), record, &event).await.map_err(store_problem)?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"imageId": image_id, "uploadUrl": presigned.uri(), "uploadHeaders": headers, "expiresAt": expires_at}),
        ),
    ))
}

async fn list(
    State(images): State<Arc<Images>>,
    caller: Caller,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let (room, standing) = images.care.room_for(&caller, &room_id).await?;
    participant_only(standing)?;
    let records = images.care.store.children(&room, "IMAGE#").await.map_err(store_problem)?;
    let expires_at = images.care.now() + chrono::Duration::from_std(images.download_for).unwrap_or_default();
    let text = |r: &HashMap<String, AttributeValue>, k: &str| {
        r.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
    };
    let mut items = Vec::with_capacity(records.len());
    for r in &records {
        let url = images
            .s3
            .get_object()
            .bucket(&images.bucket)
            .key(text(r, "s3Key"))
            .presigned(PresigningConfig::expires_in(images.download_for).map_err(presign_failed)?)
            .await
            .map_err(presign_failed)?;
        let size: u64 = r.get("sizeBytes").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or_default();
        items.push(json!({
            "imageId": text(r, "imageId"), "contentType": text(r, "contentType"), "sizeBytes": size,
            "sharedBy": text(r, "sharedBy"), "createdAt": text(r, "createdAt"),
            "downloadUrl": url.uri(), "expiresAt": expires_at,
        }));
    }
    Ok(Json(json!({"items": items})))
}
