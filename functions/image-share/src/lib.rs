//! `image-share`: `POST /v1/virtual-care/rooms/{roomId}/images` gives a
//! participant a presigned S3 PUT (`vcare_care::images`); `GET` on the same
//! path lists the room's images with short-lived download URLs.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_care::images::Images;
use vcare_domain::requests::UploadRequest;
use vcare_http::audit::{Audit, Audited, Method, Subject};
use vcare_http::{ApiJson, Authenticated, HttpFunction, Problem};
use vcare_runtime::Env;

async fn upload(
    State(images): State<Arc<Images>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<UploadRequest>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let up = images.upload(&caller, &room_id, body).await?;
    let body =
        json!({"imageId": up.image_id, "uploadUrl": up.url, "uploadHeaders": up.headers, "expiresAt": up.expires_at});
    Ok((StatusCode::CREATED, Json(body)))
}

async fn list(
    State(images): State<Arc<Images>>,
    caller: Authenticated,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    Ok(Json(json!({"items": images.list(&caller, &room_id).await?})))
}

/// The function as Lambda and the local gateway run it.
pub async fn function(env: &Env, sdk: &SdkConfig) -> Result<HttpFunction, vcare_runtime::Error> {
    let routes = Router::new().route("/v1/virtual-care/rooms/{room_id}/images", post(upload).get(list));
    Ok(HttpFunction::audited(
        routes,
        Images::from_env(env, sdk)?,
        Audit::from_env(env, sdk)?,
        vec![
            Audited::new(
                Method::POST,
                "/v1/virtual-care/rooms/{room_id}/images",
                "image.upload",
                "room",
                Subject::Path("room_id"),
            ),
            Audited::new(
                Method::GET,
                "/v1/virtual-care/rooms/{room_id}/images",
                "image.list",
                "room",
                Subject::Path("room_id"),
            ),
        ],
    ))
}
