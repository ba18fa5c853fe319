//! JSON in and out: parsing request bodies, refusals with their status, and
//! the answers every endpoint sends.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use vault_api::wire;
use vault_api::{DataKeyPair, ErrorKind};

/// The body type of every answer.
pub(crate) type Body = Full<Bytes>;

/// Longest error message echoed to a client.
const MAX_MESSAGE_CHARS: usize = 300;

/// A refused request: its status and the message for the client.
pub(crate) struct Reject {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl Reject {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Reject {
            status,
            message: message.into(),
        }
    }

    /// The JSON error answer.
    pub(crate) fn into_response(self) -> Response<Body> {
        error(self.status, &self.message)
    }
}

pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Reject> {
    serde_json::from_slice(body).map_err(|e| {
        let message = match e.classify() {
            serde_json::error::Category::Data => format!("invalid request body: {e}"),
            serde_json::error::Category::Eof => "request body is truncated JSON".to_owned(),
            _ => "request body is not valid JSON".to_owned(),
        };
        Reject::new(StatusCode::BAD_REQUEST, message)
    })
}

/// [`parse`] for a request with a `context`: a context that breaks the
/// rules (too many entries, a name too long, ...) or holds a value that is
/// not a string is a 422, as WorkOS answers, not a 400. A `context` that
/// is not an object at all stays a 400, like any malformed body.
pub(crate) fn parse_with_context<T: DeserializeOwned>(body: &[u8]) -> Result<T, Reject> {
    parse_with_context_field(body, "context")
}

/// [`parse_with_context`] for a body whose key context is in `field`
/// (`key_context` for objects).
pub(crate) fn parse_with_context_field<T: DeserializeOwned>(
    body: &[u8],
    field: &str,
) -> Result<T, Reject> {
    parse(body).map_err(|reject| context_rejection(body, field).unwrap_or(reject))
}

fn context_rejection(body: &[u8], field: &str) -> Option<Reject> {
    let mut request: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).ok()?;
    let serde_json::Value::Object(context) = request.remove(field)? else {
        return None;
    };
    let unprocessable = |message: String| Reject::new(StatusCode::UNPROCESSABLE_ENTITY, message);
    let mut entries = std::collections::BTreeMap::new();
    for (name, value) in context {
        match value {
            serde_json::Value::String(value) => {
                entries.insert(name, value);
            }
            other => {
                return Some(unprocessable(format!(
                    "context value {name:?} must be a string, not {}",
                    json_type(&other)
                )))
            }
        }
    }
    vault_api::KeyContext::try_from(entries)
        .err()
        .map(|error| unprocessable(error.to_string()))
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

pub(crate) fn decode_keys(text: &str, field: &str) -> Result<Vec<u8>, Reject> {
    vault_format::b64::decode(text).map_err(|_| {
        Reject::new(
            StatusCode::BAD_REQUEST,
            format!("{field} is not valid base64"),
        )
    })
}

pub(crate) fn service_error(error: vault_api::Error) -> Reject {
    match error.kind() {
        ErrorKind::InvalidKeys => Reject::new(StatusCode::BAD_REQUEST, error.message()),
        ErrorKind::InvalidContext => Reject::new(StatusCode::UNPROCESSABLE_ENTITY, error.message()),
        kind => {
            // Key service errors never carry secrets, so the message may be
            // logged; the client gets a generic one.
            tracing::error!(?kind, error = %error, "the key service failed");
            Reject::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

pub(crate) fn pair_response(pair: DataKeyPair) -> Response<Body> {
    to_json(&wire::DataKeyResponse::from(pair))
}

pub(crate) fn to_json<T: Serialize>(body: &T) -> Response<Body> {
    match serde_json::to_vec(body) {
        Ok(bytes) => json(StatusCode::OK, bytes),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

/// A JSON error answer, `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response<Body> {
    let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
    let body = serde_json::to_vec(&wire::ErrorResponse::new(message))
        .unwrap_or_else(|_| br#"{"error":"internal error"}"#.to_vec());
    json(status, body)
}

/// [`error`] with one more header.
pub(crate) fn error_with(
    status: StatusCode,
    message: &str,
    name: header::HeaderName,
    value: HeaderValue,
) -> Response<Body> {
    let mut response = error(status, message);
    response.headers_mut().insert(name, value);
    response
}

/// A JSON answer. Key material must not be cached by anything in between.
pub(crate) fn json(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
