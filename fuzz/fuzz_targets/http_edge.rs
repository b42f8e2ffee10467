//! The HTTP edge every route shares: an API Gateway (payload 2.0) event as
//! Lambda delivers it, through lambda_http's conversion, the caller read
//! from the bearer token's payload beside the authorizer's claims, and the
//! JSON body extractor. Also the caller reader on its own, on any payload.
//! Whatever arrives, the answer is a response below 500, never a panic.
#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::routing::any;
use libfuzzer_sys::fuzz_target;
use vcare_http::{ApiJson, Authenticated, HttpFunction, caller_from_token, is_clinic_id};
use vcare_runtime::{Context, Function};

async fn echo(caller: Authenticated, ApiJson(body): ApiJson<serde_json::Value>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"user": caller.user_id, "roles": caller.roles.len(), "body": body.is_object()}))
}

static EDGE: LazyLock<(tokio::runtime::Runtime, HttpFunction)> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    (runtime, HttpFunction::new(Router::new().route("/{*rest}", any(echo))))
});

fn unique<T: PartialEq>(items: &[T]) -> bool {
    items.iter().enumerate().all(|(i, a)| !items[..i].contains(a))
}

/// base64url without padding (a JWS segment).
fn segment(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // The input as a token's payload, the authorizer's claims taken from it.
    let token = format!("e30.{}.c2ln", segment(data));
    let claims: HashMap<String, String> = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|m| m.into_iter().map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect())
        .unwrap_or_default();
    if let Ok(caller) = caller_from_token(Some(&token), |name| claims.get(name).map(String::as_str)) {
        assert!(!caller.user_id.is_empty() && is_clinic_id(&caller.clinic_id) && unique(&caller.roles));
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let (runtime, edge) = &*EDGE;
    if let Ok(response) = runtime.block_on(edge.invoke(event, Context::default())) {
        let status = response["statusCode"].as_u64().unwrap_or(200);
        assert!(status < 500, "{status}");
    }
});
