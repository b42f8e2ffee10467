use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An RFC 9457 problem. `detail` is written for the caller: it never holds
/// internal error text, secrets or personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    #[serde(serialize_with = "as_u16")]
    pub status: StatusCode,
    pub detail: String,
}

fn as_u16<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status,
            detail: detail.into(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
    pub fn service_unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }
    /// For failures the caller cannot fix. Log the cause (without PII) before
    /// returning this; the body says nothing about it.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "the request could not be completed; try again later")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (self.status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response()
    }
}

/// `axum::Json`, but every rejection is a problem+json 400/413/415 whose
/// detail names the field that failed, not the value.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

/// Parses a JSON body the handler read as bytes (to check something
/// first, like a shared secret), with [`ApiJson`]'s problems: 415 without a
/// JSON content type, 400 for a body that is not the JSON expected.
pub fn json_body<T: DeserializeOwned>(headers: &http::HeaderMap, body: &[u8]) -> Result<T, Problem> {
    let json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
    });
    if !json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    axum::Json::<T>::from_bytes(body).map(|axum::Json(v)| v).map_err(json_problem)
}

/// Parses a JSON body that may also be empty (then `T::default()`), with
/// the same problem details as [`ApiJson`].
pub fn json_or_default<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Problem::bad_request(data_error_detail(&e.to_string())),
        _ => Problem::bad_request("the body is not well-formed JSON"),
    })
}

fn json_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be JSON (Content-Type: application/json)")
        }
        JsonRejection::BytesRejection(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {} bytes", super::MAX_BODY_BYTES),
        ),
        JsonRejection::JsonDataError(e) => Problem::bad_request(data_error_detail(&e.body_text())),
        JsonRejection::JsonSyntaxError(_) => Problem::bad_request("the body is not well-formed JSON"),
        _ => Problem::bad_request("the body could not be read"),
    }
}

/// serde's messages quote the offending *value* for some errors ("invalid
/// value: string \"+4915...\""); keep only the path and the kind of error so
/// that no personal data is echoed back or logged.
fn data_error_detail(text: &str) -> String {
    let text = text.strip_prefix("Failed to deserialize the JSON body into the target type: ").unwrap_or(text);
    let (path, rest) = match text.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => (Some(path), rest),
        _ => (None, text),
    };
    let kind = if rest.starts_with("missing field") {
        rest.split(" at line").next().unwrap_or(rest).to_owned()
    } else if rest.starts_with("unknown field") {
        rest.split(", expected").next().unwrap_or(rest).to_owned()
    } else if rest.starts_with("invalid type") {
        "has the wrong type".to_owned()
    } else if rest.starts_with("unknown variant") {
        "is not one of the allowed values".to_owned()
    } else {
        "is invalid".to_owned()
    };
    match path {
        Some(path) => format!("{path}: {kind}"),
        None if kind.starts_with("missing") || kind.starts_with("unknown") => kind,
        None => format!("the body {kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn renders_rfc9457_problem_json() {
        let response = Problem::conflict("the room has ended").into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "about:blank", "title": "Conflict", "status": 409, "detail": "the room has ended"})
        );
    }

    #[test]
    fn data_errors_name_the_field_not_the_value() {
        let detail = data_error_detail(
            "Failed to deserialize the JSON body into the target type: recipient.phone: invalid type: integer `4915112345678`, expected a string at line 1 column 30",
        );
        assert_eq!(detail, "recipient.phone: has the wrong type");
        assert!(!detail.contains("4915112345678"));
        assert_eq!(
            data_error_detail(
                "Failed to deserialize the JSON body into the target type: missing field `roomId` at line 1 column 2"
            ),
            "missing field `roomId`"
        );
        assert_eq!(
            data_error_detail(
                "Failed to deserialize the JSON body into the target type: role: unknown variant `surgeon`, expected one of `doctor`"
            ),
            "role: is not one of the allowed values"
        );
    }
}
