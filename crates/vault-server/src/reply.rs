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
use zeroize::Zeroizing;

/// The body type of every answer.
pub(crate) type Body = Full<Bytes>;

/// Longest error message echoed to a client.
const MAX_MESSAGE_CHARS: usize = 300;

/// A refused request: its status and the message for the client.
pub(crate) struct Reject {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// Set on 503: the key service is unavailable for now.
    retry_after: bool,
}

impl Reject {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Reject {
            status,
            message: message.into(),
            retry_after: false,
        }
    }

    /// The JSON error answer.
    pub(crate) fn into_response(self) -> Response<Body> {
        let mut response = error(self.status, &self.message);
        if self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after());
        }
        response
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
    if let Err(error) = vault_api::KeyContext::try_from(entries) {
        return Some(unprocessable(error.to_string()));
    }
    // The map above kept the last of a name given twice; the rules hold for
    // what is left, so a context that still does not deserialize names an
    // entry twice.
    // Both names a request may use (`key_context` for objects); fields
    // other than the two are ignored.
    #[derive(serde::Deserialize)]
    #[allow(dead_code)] // Deserialized for its checks only.
    struct ContextOnly {
        context: Option<vault_api::KeyContext>,
        key_context: Option<vault_api::KeyContext>,
    }
    serde_json::from_slice::<ContextOnly>(body)
        .err()
        .map(|error| unprocessable(format!("invalid context: {error}")))
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

/// `Retry-After` of a 503: the seconds a client should wait.
pub(crate) fn retry_after() -> HeaderValue {
    HeaderValue::from_static("1")
}

/// The answer to a key service failure: the client's own mistakes (bad
/// keys, a bad context) as 400 and 422 with the message; unavailability
/// (no answer, a timeout, an upstream answer worth retrying) as 503 with
/// `Retry-After`; anything else as 500. The cause of a 503 or 500 is
/// logged (key service errors never carry secrets); the client gets a
/// generic message.
pub(crate) fn service_error(error: vault_api::Error) -> Reject {
    let kind = error.kind();
    match kind {
        ErrorKind::InvalidKeys => Reject::new(StatusCode::BAD_REQUEST, error.message()),
        ErrorKind::InvalidContext => Reject::new(StatusCode::UNPROCESSABLE_ENTITY, error.message()),
        _ if error.is_retryable() => {
            tracing::warn!(?kind, error = %error, "the key service is unavailable");
            let mut reject = Reject::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the key service is unavailable; retry later",
            );
            reject.retry_after = true;
            reject
        }
        _ => {
            tracing::error!(?kind, error = %error, "the key service failed");
            Reject::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

pub(crate) fn pair_response(pair: DataKeyPair) -> Response<Body> {
    secret_json(&wire::DataKeyResponse::from(pair))
}

/// The 200 answer to a decrypt: the data key and its id.
pub(crate) fn data_key_response(data_key: &vault_api::DataKey) -> Response<Body> {
    secret_json(&wire::DecryptDataKeyResponse::from(data_key))
}

/// A 200 JSON answer that holds key material. It is serialized into one
/// buffer of exactly the size it needs (measured by a first pass that
/// writes nothing), so the buffer never grows and leaves no stale copy
/// behind in freed memory, and the body zeroizes that buffer when hyper
/// drops it. What hyper, h2, rustls and the kernel copy while sending it
/// is beyond our reach (see docs/SECURITY.md).
pub(crate) fn secret_json<T: Serialize>(body: &T) -> Response<Body> {
    match secret_json_bytes(body) {
        Some(buffer) => {
            let mut response = json(StatusCode::OK, Vec::new());
            *response.body_mut() = Full::new(Bytes::from_owner(SecretBytes(buffer)));
            response
        }
        None => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

/// `body` as JSON in a zeroizing buffer allocated once, at its final size.
fn secret_json_bytes<T: Serialize>(body: &T) -> Option<Zeroizing<Vec<u8>>> {
    let mut size = ByteCount(0);
    serde_json::to_writer(&mut size, body).ok()?;
    let mut buffer = Zeroizing::new(Vec::with_capacity(size.0));
    serde_json::to_writer(&mut *buffer, body).ok()?;
    Some(buffer)
}

/// Counts what is written, keeping nothing.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A response body's bytes, zeroized when the last reference is dropped.
struct SecretBytes(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for SecretBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_answers_are_written_once_at_their_final_size() {
        let key = vault_api::DataKey::new("3f1c1d2e-5b6a-4c7d-8e9f-0a1b2c3d4e5f", [7u8; 32]);
        let answer = wire::DecryptDataKeyResponse::from(&key);
        let buffer = secret_json_bytes(&answer).expect("serializes");
        // Never grown, so no earlier, smaller copy was freed unzeroized.
        assert_eq!(buffer.capacity(), buffer.len());
        assert_eq!(
            buffer.as_slice(),
            serde_json::to_vec(&answer).expect("serializes").as_slice()
        );
    }
}
