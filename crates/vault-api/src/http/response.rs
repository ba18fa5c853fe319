//! What a response means: an answer, or a failure with its kind, status,
//! request id and `Retry-After`. Nothing here trusts the response.

use std::time::SystemTime;

use hyper::header::{self, HeaderMap};
use serde::de::DeserializeOwned;

use super::transport::{http, Bytes, TransportError, TransportErrorKind, MAX_RESPONSE_BYTES};
use crate::wire::{self, SecretString};
use crate::{DataKey, DataKeyPair, Error, ErrorKind, RetryPolicy};

/// Longest request id and error message kept from a response.
const MAX_ECHOED_CHARS: usize = 200;

/// A parsed success body and the request id that came with it.
pub(super) struct Answer<T> {
    pub(super) body: T,
    pub(super) request_id: Option<String>,
}

/// What the transport gave back for a request to `path`, as an answer or
/// an error; `policy` says which statuses are retried and how long a
/// `Retry-After` may be.
pub(super) fn read<A: DeserializeOwned>(
    path: &str,
    sent: Result<http::Response<Bytes>, TransportError>,
    policy: &RetryPolicy,
) -> Result<Answer<A>, Error> {
    let (head, body) = match sent {
        Ok(response) => {
            let (head, body) = response.into_parts();
            (head, within_limit(body))
        }
        Err(mut error) => match error.take_response_head() {
            Some(head) => (head, Err(error)),
            None => return Err(transport_error(error, None)),
        },
    };
    let status = head.status.as_u16();
    let request_id = request_id(&head.headers);
    let span = tracing::Span::current();
    span.record("status", status);
    if let Some(id) = &request_id {
        span.record("request_id", id.as_str());
    }
    let id = request_id.as_deref();
    if !head.status.is_success() {
        return Err(error_status(path, &head, body.ok(), id, policy));
    }
    let bytes = body.map_err(|e| tagged(transport_error(e, Some(status)), id))?;
    let body = parse_json(status, &bytes).map_err(|e| tagged(e, id))?;
    Ok(Answer { body, request_id })
}

/// The body, unless it is over the limit (a transport of yours may not
/// enforce it).
fn within_limit(body: Bytes) -> Result<Bytes, TransportError> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(TransportError::new(TransportErrorKind::BodyTooLarge));
    }
    Ok(body)
}

/// The error for a transport failure; `status` when the failure came
/// while reading the body of a success.
fn transport_error(error: TransportError, status: Option<u16>) -> Error {
    use TransportErrorKind as T;
    let retryable = error.is_retryable();
    let (kind, message) = match (error.kind(), status) {
        (T::BodyTooLarge, _) => (
            ErrorKind::InvalidResponse,
            format!("the key service's answer is over {MAX_RESPONSE_BYTES} bytes"),
        ),
        (T::Timeout, _) => (
            ErrorKind::Timeout,
            "the transport gave up waiting for the key service".to_owned(),
        ),
        (T::Tls, _) => (
            ErrorKind::Connect,
            format!(
                "the key service's TLS certificate was refused: {}",
                cause(&error).unwrap_or_else(|| "no reason given".to_owned())
            ),
        ),
        (T::ProxyAuth, _) => (
            ErrorKind::Connect,
            format!(
                "could not reach the key service: the proxy refused the credentials of its URL ({})",
                cause(&error).unwrap_or_else(|| "407 Proxy Authentication Required".to_owned())
            ),
        ),
        (T::Connect, None) => (
            ErrorKind::Connect,
            "could not connect to the key service".to_owned(),
        ),
        (T::Other, None) => (
            ErrorKind::Connect,
            "the transport could not send the request".to_owned(),
        ),
        (_, None) => (
            ErrorKind::Connect,
            "the connection to the key service failed before an answer".to_owned(),
        ),
        (_, Some(_)) => (
            ErrorKind::Connect,
            "the connection to the key service failed while reading the answer".to_owned(),
        ),
    };
    let mut result = Error::new(kind, message);
    if let (T::BodyTooLarge, Some(status)) = (error.kind(), status) {
        result = result.with_status(status);
    }
    // The message quotes the cause of a refused certificate or proxy
    // credentials: the source keeps the kind only, so the chain shows the
    // cause once.
    let source = match error.kind() {
        T::Tls | T::ProxyAuth => TransportError::new(error.kind()),
        _ => error,
    };
    result.with_retryable(retryable).with_source(source)
}

/// The text of `error`'s cause.
fn cause(error: &TransportError) -> Option<String> {
    std::error::Error::source(error).map(ToString::to_string)
}

/// The error for a non-success status. The body only adds detail, so
/// one that could not be read is left out.
fn error_status(
    path: &str,
    head: &http::response::Parts,
    body: Option<Bytes>,
    request_id: Option<&str>,
    policy: &RetryPolicy,
) -> Error {
    let retry_after = head
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| policy.retry_after(v, SystemTime::now()));
    let parsed: Option<wire::ErrorResponse> = body.and_then(|b| serde_json::from_slice(&b).ok());
    let detail = parsed.as_ref().and_then(error_detail);
    let status = head.status.as_u16();
    let mut error =
        status_error(path, status, detail).with_retryable(policy.retries_status(status));
    if let Some(code) = parsed.and_then(|p| p.code).map(|c| printable(&c)) {
        error = error.with_code(code);
    }
    if let Some(wait) = retry_after {
        error = error.with_retry_after(wait);
    }
    tagged(error, request_id)
}

fn parse_json<A: DeserializeOwned>(status: u16, bytes: &[u8]) -> Result<A, Error> {
    serde_json::from_slice::<A>(bytes).map_err(|e| {
        // serde's message can quote the body: keep only where it failed.
        let what = match e.classify() {
            serde_json::error::Category::Data => "missing field or wrong type",
            serde_json::error::Category::Eof => "truncated",
            _ => "syntax error",
        };
        Error::new(
            ErrorKind::InvalidResponse,
            format!(
                "the key service's answer is not the expected JSON ({what} at line {}, column {})",
                e.line(),
                e.column()
            ),
        )
        .with_status(status)
    })
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    let id = headers.get("x-request-id")?.to_str().ok()?.trim();
    (!id.is_empty()).then(|| id.chars().take(MAX_ECHOED_CHARS).collect())
}

/// `error` with the request id, when there is one.
fn tagged(error: Error, request_id: Option<&str>) -> Error {
    match request_id {
        Some(id) => error.with_request_id(id),
        None => error,
    }
}

/// What an error body says: its message, its `code` and its `errors[]`
/// entries when present (`Validation failed (code invalid_request;
/// context: too_many_entries)`), printable and cut short.
fn error_detail(parsed: &wire::ErrorResponse) -> Option<String> {
    let mut extra: Vec<String> = Vec::new();
    extra.extend(parsed.code.as_deref().map(|code| format!("code {code}")));
    extra.extend(parsed.details());
    let text = match (
        parsed.text().filter(|t| !t.trim().is_empty()),
        extra.is_empty(),
    ) {
        (Some(text), true) => text.to_owned(),
        (Some(text), false) => format!("{text} ({})", extra.join("; ")),
        (None, false) => extra.join("; "),
        (None, true) => return None,
    };
    Some(printable(&text))
}

/// `text` without control characters, cut to what an error may echo.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_ECHOED_CHARS)
        .collect()
}

/// The error for a non-success status.
fn status_error(path: &str, status: u16, detail: Option<String>) -> Error {
    let objects = path.starts_with(crate::object::OBJECTS_PATH);
    let (kind, what) = match status {
        404 if objects => (ErrorKind::NotFound, "the objects API found no such object"),
        409 if objects => (
            ErrorKind::Conflict,
            "the objects API refused a conflicting change",
        ),
        400 if objects => (
            ErrorKind::InvalidRequest,
            "the objects API refused the request",
        ),
        401 | 403 => (
            ErrorKind::Unauthorized,
            "the key service refused the API key",
        ),
        422 => (
            ErrorKind::InvalidContext,
            "the key service rejected the key context",
        ),
        400 | 404 if path != wire::DATA_KEY_PATH => (
            ErrorKind::InvalidKeys,
            "the key service rejected the encrypted keys",
        ),
        429 => (ErrorKind::Api, "the key service is rate limiting requests"),
        _ => (ErrorKind::Api, "the key service returned an error"),
    };
    let message = match detail {
        Some(detail) => format!("{what}: {detail}"),
        None => what.to_owned(),
    };
    Error::new(kind, message).with_status(status)
}

fn invalid_response(message: &str, request_id: Option<&str>) -> Error {
    tagged(Error::new(ErrorKind::InvalidResponse, message), request_id)
}

/// The data key of an answer, checked.
pub(super) fn data_key(
    id: &str,
    text: &SecretString,
    request_id: Option<&str>,
) -> Result<DataKey, Error> {
    if id.trim().is_empty() {
        return Err(invalid_response(
            "the key service's answer has an empty data key id",
            request_id,
        ));
    }
    DataKey::from_base64(id, text.expose_secret()).map_err(|e| match e {
        vault_crypto::Error::InvalidKeyLength { len } => invalid_response(
            &format!("the key service's data key is {len} bytes; expected 32"),
            request_id,
        ),
        _ => invalid_response("the key service's data key is not base64", request_id),
    })
}

/// The data key pair of a `data-key` or `rekey` answer, checked.
pub(super) fn data_key_pair(answer: Answer<wire::DataKeyResponse>) -> Result<DataKeyPair, Error> {
    let request_id = answer.request_id.as_deref();
    let response = answer.body;
    let data_key = data_key(&response.id, &response.data_key, request_id)?;
    let encrypted_keys = vault_format::b64::decode(&response.encrypted_keys).map_err(|_| {
        invalid_response("the key service's encrypted_keys is not base64", request_id)
    })?;
    if encrypted_keys.is_empty() {
        return Err(invalid_response(
            "the key service's encrypted_keys is empty",
            request_id,
        ));
    }
    Ok(DataKeyPair::new(response.context, data_key, encrypted_keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let kind = |path, status| status_error(path, status, None).kind();
        assert_eq!(kind(wire::DECRYPT_PATH, 401), ErrorKind::Unauthorized);
        assert_eq!(kind(wire::DECRYPT_PATH, 403), ErrorKind::Unauthorized);
        assert_eq!(kind(wire::DATA_KEY_PATH, 422), ErrorKind::InvalidContext);
        assert_eq!(kind(wire::DECRYPT_PATH, 400), ErrorKind::InvalidKeys);
        assert_eq!(kind(wire::REKEY_PATH, 404), ErrorKind::InvalidKeys);
        assert_eq!(kind(wire::DATA_KEY_PATH, 400), ErrorKind::Api);
        assert_eq!(kind(wire::DATA_KEY_PATH, 409), ErrorKind::Api);
        assert_eq!(kind("/vault/v1/kv/obj_1", 404), ErrorKind::NotFound);
        assert_eq!(kind("/vault/v1/kv?limit=1", 409), ErrorKind::Conflict);
        assert_eq!(kind("/vault/v1/kv", 400), ErrorKind::InvalidRequest);
        assert_eq!(kind("/vault/v1/kv", 422), ErrorKind::InvalidContext);
        let throttled = status_error(wire::DATA_KEY_PATH, 429, Some("slow down".into()));
        assert!(throttled.is_retryable());
        assert_eq!(
            throttled.to_string(),
            "the key service is rate limiting requests: slow down (HTTP 429)"
        );
        assert!(!status_error(wire::DECRYPT_PATH, 400, None).is_retryable());
        let detail = |body: &[u8]| {
            serde_json::from_slice::<wire::ErrorResponse>(body)
                .ok()
                .and_then(|parsed| error_detail(&parsed))
        };
        assert_eq!(
            detail(br#"{"message":"bad\nthing"}"#).as_deref(),
            Some("badthing")
        );
        assert_eq!(detail(b"<html>"), None);
        assert_eq!(detail(br#"{"error":""}"#), None);
        assert_eq!(
            detail(
                br#"{"message":"Validation failed","code":"invalid_request_parameters",
                     "errors":[{"field":"context","code":"required"}]}"#
            )
            .as_deref(),
            Some("Validation failed (code invalid_request_parameters; context: required)")
        );
    }

    #[test]
    fn transport_failures_keep_their_retryability() {
        use TransportErrorKind as T;
        let error = |kind, status| transport_error(TransportError::new(kind), status);
        for (kind, expected, retryable) in [
            (T::Connect, ErrorKind::Connect, true),
            (T::Interrupted, ErrorKind::Connect, true),
            (T::Timeout, ErrorKind::Timeout, true),
            (T::BodyTooLarge, ErrorKind::InvalidResponse, false),
            (T::Other, ErrorKind::Connect, false),
            (T::Tls, ErrorKind::Connect, false),
            (T::ProxyAuth, ErrorKind::Connect, false),
        ] {
            for status in [None, Some(200)] {
                let error = error(kind, status);
                assert_eq!(error.kind(), expected, "{kind:?}");
                assert_eq!(error.is_retryable(), retryable, "{kind:?} {status:?}");
                assert!(std::error::Error::source(&error).is_some());
            }
        }
        assert_eq!(error(T::BodyTooLarge, Some(200)).status(), Some(200));
        assert_eq!(error(T::Interrupted, Some(200)).status(), None);
    }
}
