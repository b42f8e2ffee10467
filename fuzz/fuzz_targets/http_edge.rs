//! The HTTP edge every route shares: an API Gateway (payload 2.0) event as
//! Lambda delivers it, through lambda_http's conversion, the caller read
//! from the authorizer's claims (every form a role claim takes), and the
//! JSON body extractor. Also the claim readers on their own. Whatever
//! arrives, the answer is a response below 500, never a panic.
#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::routing::any;
use libfuzzer_sys::fuzz_target;
use vcare_http::{ApiJson, Caller, HttpFunction, roles_from_claim};
use vcare_runtime::{Context, Function};

async fn echo(caller: Caller, ApiJson(body): ApiJson<serde_json::Value>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"user": caller.user_id, "roles": caller.roles.len(), "body": body.is_object()}))
}

static EDGE: LazyLock<(tokio::runtime::Runtime, HttpFunction)> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    (runtime, HttpFunction::new(Router::new().route("/{*rest}", any(echo))))
});

fn unique<T: PartialEq>(items: &[T]) -> bool {
    items.iter().enumerate().all(|(i, a)| !items[..i].contains(a))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(unique(&roles_from_claim(text)));
    }
    if let Ok(claims) = serde_json::from_slice::<HashMap<String, String>>(data)
        && let Ok(caller) = Caller::from_claims(|name| claims.get(name).map(String::as_str))
    {
        assert!(!caller.user_id.is_empty() && !caller.clinic_id.is_empty() && unique(&caller.roles));
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let (runtime, edge) = &*EDGE;
    if let Ok(response) = runtime.block_on(edge.invoke(event, Context::default())) {
        let status = response["statusCode"].as_u64().unwrap_or(200);
        assert!(status < 500, "{status}");
    }
});
