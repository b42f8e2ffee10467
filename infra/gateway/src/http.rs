//! The HTTP API: template routes served with payload format 2.0 events.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawPathParams, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::Deployed;
use crate::auth::{Authorizer, flatten_claims};

/// API Gateway's own limit on a request payload.
const API_GATEWAY_MAX_BODY: usize = 10 * 1024 * 1024;

pub struct Route {
    pub function: Arc<Deployed>,
    pub method: String,
    pub path: String,
    pub authorizer: Option<Arc<Authorizer>>,
}

/// SAM path syntax to axum's: `{proxy+}` is a greedy segment.
fn axum_path(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            Some(name) => format!("{{*{name}}}"),
            None => seg.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub fn router(routes: Vec<Route>) -> Router {
    // Routes of one path share a method router; a method the template does
    // not declare for a path is API Gateway's 404, not a 405.
    let mut by_path: Vec<(String, MethodRouter, bool)> = Vec::new();
    for route in routes {
        let route = Arc::new(route);
        let path = axum_path(&route.path);
        let handler = {
            let route = route.clone();
            move |params: RawPathParams, req: Request| serve(route.clone(), params, req)
        };
        let filter = match route.method.as_str() {
            "ANY" => None,
            m => match http::Method::from_bytes(m.as_bytes()).ok().and_then(|m| MethodFilter::try_from(m).ok()) {
                Some(filter) => Some(filter),
                None => {
                    tracing::warn!(method = m, path = %route.path, "route method not supported locally; skipped");
                    continue;
                }
            },
        };
        let index = match by_path.iter().position(|(p, _, _)| *p == path) {
            Some(i) => i,
            None => {
                by_path.push((path, MethodRouter::new(), false));
                by_path.len() - 1
            }
        };
        let methods = std::mem::take(&mut by_path[index].1);
        by_path[index].1 = match filter {
            None => {
                by_path[index].2 = true;
                methods.fallback(handler)
            }
            Some(filter) => methods.on(filter, handler),
        };
    }
    let mut router = Router::new();
    for (path, methods, any) in by_path {
        router = router.route(&path, if any { methods } else { methods.fallback(not_found) });
    }
    router.fallback(not_found)
}

async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not Found")
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], json!({"message": text}).to_string()).into_response()
}

/// How long API Gateway waits for an integration's answer.
pub const API_GATEWAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// HTTP API's quota: the request line and header values together, at most
/// 10,240 bytes.
pub const API_GATEWAY_MAX_HEADER_BYTES: usize = 10 * 1024;

fn header_bytes(parts: &http::request::Parts) -> usize {
    let line = parts.method.as_str().len() + parts.uri.to_string().len() + 10;
    line + parts.headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum::<usize>()
}

async fn serve(route: Arc<Route>, params: RawPathParams, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if header_bytes(&parts) > API_GATEWAY_MAX_HEADER_BYTES {
        return message(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "Request Header Fields Too Large");
    }
    let Ok(body) = axum::body::to_bytes(body, API_GATEWAY_MAX_BODY).await else {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let claims = match &route.authorizer {
        None => None,
        Some(authorizer) => {
            let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            match authorizer.check(header) {
                Ok(claims) => Some(claims),
                Err(why) => {
                    tracing::info!(route = %route.path, reason = %why, "caller token refused");
                    let mut response = message(StatusCode::UNAUTHORIZED, "Unauthorized");
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    return response;
                }
            }
        }
    };
    let path_params: HashMap<String, String> = params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let event = event_v2(&route, &parts, &path_params, claims.as_ref(), &body);
    // API Gateway's own integration timeout: 30 s from the request, however
    // long the function waited for its turn (then 503, as HTTP APIs answer).
    match tokio::time::timeout(API_GATEWAY_TIMEOUT, route.function.invoke(event)).await {
        Err(_) => {
            tracing::error!(function = %route.function.def.logical_id, "no answer within API Gateway's 30 s");
            message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
        Ok(Ok(value)) => response_v2(value),
        Ok(Err(e)) => {
            tracing::error!(function = %route.function.def.logical_id, error = %e, "function failed");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// The API Gateway HTTP API payload format 2.0 event for a request.
pub fn event_v2(
    route: &Route,
    parts: &http::request::Parts,
    path_params: &HashMap<String, String>,
    claims: Option<&serde_json::Map<String, Value>>,
    body: &[u8],
) -> Value {
    let mut headers: serde_json::Map<String, Value> = serde_json::Map::new();
    let mut cookies = Vec::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        if name == header::COOKIE {
            cookies.extend(
                values.iter().flat_map(|v| v.split(';')).map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()),
            );
            continue;
        }
        headers.insert(name.as_str().to_owned(), Value::String(values.join(",")));
    }
    let raw_query = parts.uri.query().unwrap_or_default();
    let mut query: serde_json::Map<String, Value> = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        match query.get_mut(k.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    let (body, is_base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (Value::String(STANDARD.encode(body)), true),
    };
    let route_key = format!("{} {}", if route.method == "ANY" { "ANY" } else { &route.method }, route.path);
    let now = chrono::Utc::now();
    let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let mut context = json!({
        "accountId": "123456789012",
        "apiId": "local",
        "domainName": host,
        "domainPrefix": host.split('.').next().unwrap_or(host),
        "http": {
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "protocol": "HTTP/1.1",
            // API Gateway's is the TCP peer's address, as here.
            "sourceIp": parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or_else(|| "127.0.0.1".to_owned(), |c| c.0.ip().to_string()),
            "userAgent": parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default(),
        },
        "requestId": uuid::Uuid::new_v4().to_string(),
        "routeKey": route_key,
        "stage": "$default",
        "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
        "timeEpoch": now.timestamp_millis(),
    });
    if let Some(claims) = claims {
        context["authorizer"] = json!({"jwt": {"claims": flatten_claims(claims), "scopes": null}});
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": is_base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !path_params.is_empty() {
        event["pathParameters"] = json!(path_params);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

/// A function's answer as API Gateway turns it into an HTTP response. An
/// answer without `statusCode` is a 200 JSON body (the HTTP API's simple form).
pub fn response_v2(value: Value) -> Response {
    let Some(status) = value.get("statusCode").and_then(Value::as_u64) else {
        return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response();
    };
    let Ok(status) = StatusCode::from_u16(status as u16) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let body = match value.get("body") {
        Some(Value::String(s)) if value["isBase64Encoded"] == true => STANDARD.decode(s).unwrap_or_default(),
        Some(Value::String(s)) => s.clone().into_bytes(),
        _ => Vec::new(),
    };
    let mut headers = HeaderMap::new();
    let mut add = |name: &str, v: &Value| {
        if let (Ok(name), Some(Ok(v))) = (HeaderName::try_from(name), v.as_str().map(HeaderValue::from_str)) {
            headers.append(name, v);
        }
    };
    for (name, v) in value["headers"].as_object().into_iter().flatten() {
        add(name, v);
    }
    for (name, vs) in value["multiValueHeaders"].as_object().into_iter().flatten() {
        for v in vs.as_array().into_iter().flatten() {
            add(name, v);
        }
    }
    for c in value["cookies"].as_array().into_iter().flatten() {
        add("set-cookie", c);
    }
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sam_paths_become_axum_paths() {
        assert_eq!(axum_path("/v1/rooms/{roomId}/end"), "/v1/rooms/{roomId}/end");
        assert_eq!(axum_path("/files/{proxy+}"), "/files/{*proxy}");
    }

    #[test]
    fn plain_json_answers_are_200() {
        let r = response_v2(json!({"ok": true}));
        assert_eq!(r.status(), StatusCode::OK);
        let r = response_v2(json!({"statusCode": 204, "headers": {"x-a": "1"}, "cookies": ["a=b"]}));
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(r.headers()["x-a"], "1");
        assert_eq!(r.headers()["set-cookie"], "a=b");
    }
}
