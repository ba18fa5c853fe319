//! One request: faults, routing, authentication, body limits, the key
//! service, and JSON answers.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use ring::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;
use vault_api::wire::{self, SecretString};
use vault_api::{DataKeyPair, ErrorKind, KeyService};

use crate::faults::Fault;
use crate::{Faults, ServerConfig};

/// The body type of every answer.
pub(crate) type Body = Full<Bytes>;

/// How long a client may take to send a whole request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an oversized body is read and thrown away so the client
/// sees the 413 instead of a reset connection.
const MAX_DRAIN_BYTES: usize = 16 << 20;
/// Longest error message echoed to a client.
const MAX_MESSAGE_CHARS: usize = 300;
/// Longest path written to logs.
const MAX_LOGGED_PATH_CHARS: usize = 100;

/// The endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    DataKey,
    Decrypt,
    Rekey,
    Health,
    NotFound,
}

impl Route {
    fn of(path: &str) -> Route {
        match path {
            wire::DATA_KEY_PATH => Route::DataKey,
            wire::DECRYPT_PATH => Route::Decrypt,
            wire::REKEY_PATH => Route::Rekey,
            "/health" => Route::Health,
            _ => Route::NotFound,
        }
    }
}

/// The name a path is counted under in [`Faults::requests`].
pub(crate) fn path_label(path: &str) -> &'static str {
    match Route::of(path) {
        Route::DataKey => wire::DATA_KEY_PATH,
        Route::Decrypt => wire::DECRYPT_PATH,
        Route::Rekey => wire::REKEY_PATH,
        Route::Health => "/health",
        Route::NotFound => "other",
    }
}

/// The error a service returns to make hyper close the connection without
/// an answer (an injected "dropped connection").
#[derive(Debug)]
pub(crate) struct Dropped;

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// A request body: hyper's from a connection, or a buffer in memory
/// ([`crate::RequestHandler`]).
pub(crate) trait RequestBody: hyper::body::Body<Data = Bytes> + Send + Sync + Unpin {}

impl<B: hyper::body::Body<Data = Bytes> + Send + Sync + Unpin> RequestBody for B {}

/// What every connection shares.
pub(crate) struct App {
    service: Arc<dyn KeyService>,
    /// SHA-256 of each accepted API key, computed once: comparing
    /// fixed-length digests keeps the comparison constant-time whatever the
    /// keys' lengths, and the keys themselves need not stay in memory.
    api_key_digests: Vec<ring::digest::Digest>,
    max_body_bytes: usize,
    faults: Faults,
    rng: SystemRandom,
    fallback_ids: AtomicU64,
}

impl App {
    pub(crate) fn new(service: Arc<dyn KeyService>, config: ServerConfig) -> Arc<App> {
        Arc::new(App {
            service,
            api_key_digests: config
                .api_keys
                .iter()
                .map(|key| {
                    ring::digest::digest(&ring::digest::SHA256, key.expose_secret().as_bytes())
                })
                .collect(),
            max_body_bytes: config.limits.max_body_bytes,
            faults: config.faults,
            rng: SystemRandom::new(),
            fallback_ids: AtomicU64::new(0),
        })
    }

    /// Answers one request, or drops it when a fault says so.
    pub(crate) async fn handle<B: RequestBody>(
        self: Arc<Self>,
        request: Request<B>,
    ) -> Result<Response<Body>, Dropped> {
        let request_id = self.new_request_id();
        let path: String = request
            .uri()
            .path()
            .chars()
            .take(MAX_LOGGED_PATH_CHARS)
            .collect();
        let span = tracing::info_span!(
            "vault_server.request",
            method = %request.method(),
            path = %path,
            request_id = %request_id,
            status = tracing::field::Empty,
        );
        async move {
            let mut response = match self.answer(request).await {
                Ok(response) => response,
                Err(Dropped) => {
                    tracing::warn!("dropping the connection (injected fault)");
                    return Err(Dropped);
                }
            };
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert("x-request-id", value);
            }
            let status = response.status().as_u16();
            tracing::Span::current().record("status", status);
            if status >= 500 {
                tracing::warn!(status, "answered with a server error");
            } else {
                tracing::info!(status, "answered");
            }
            Ok(response)
        }
        .instrument(span)
        .await
    }

    async fn answer<B: RequestBody>(&self, request: Request<B>) -> Result<Response<Body>, Dropped> {
        let route = Route::of(request.uri().path());
        let idempotency_key = request
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok());
        let (delay, fault) = self
            .faults
            .on_request(request.uri().path(), idempotency_key);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        match fault {
            Some(Fault::Drop) => return Err(Dropped),
            Some(Fault::Status(status, retry_after)) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let message = status.canonical_reason().unwrap_or("injected fault");
                let mut response = error(status, message);
                if let Some(value) = retry_after.and_then(|v| HeaderValue::try_from(v).ok()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return Ok(response);
            }
            None => {}
        }

        let allowed = match route {
            Route::NotFound => return Ok(error(StatusCode::NOT_FOUND, "not found")),
            Route::Health => "GET, HEAD",
            _ => "POST",
        };
        let method_ok = match route {
            Route::Health => request.method() == Method::GET || request.method() == Method::HEAD,
            _ => request.method() == Method::POST,
        };
        if !method_ok {
            let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allowed));
            return Ok(response);
        }
        if route == Route::Health {
            return Ok(json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec()));
        }
        if !self.authorized(request.headers()) {
            let mut response = error(StatusCode::UNAUTHORIZED, "missing or invalid API key");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return Ok(response);
        }

        let version = request.version();
        let body = match read_body(request, self.max_body_bytes).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                let mut response = error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("request body is over {} bytes", self.max_body_bytes),
                );
                if version <= Version::HTTP_11 {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                return Ok(response);
            }
            Err(BodyError::Unreadable) => {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    "request body could not be read",
                ))
            }
        };
        let answer = match route {
            Route::DataKey => self.create_data_key(&body).await,
            Route::Decrypt => self.decrypt(&body).await,
            _ => self.rekey(&body).await,
        };
        Ok(answer.unwrap_or_else(|reject| error(reject.status, &reject.message)))
    }

    async fn create_data_key(&self, body: &[u8]) -> Result<Response<Body>, Reject> {
        let request: wire::CreateDataKeyRequest = parse_with_context(body)?;
        let pair = self
            .service
            .create_data_key(&request.context)
            .await
            .map_err(service_error)?;
        Ok(pair_response(pair))
    }

    async fn decrypt(&self, body: &[u8]) -> Result<Response<Body>, Reject> {
        let request: wire::DecryptDataKeyRequest = parse(body)?;
        let keys = decode_keys(&request.keys, "keys")?;
        let data_key = self
            .service
            .decrypt_data_key(&keys)
            .await
            .map_err(service_error)?;
        let response = wire::DecryptDataKeyResponse {
            data_key: SecretString::from(data_key.secret_base64()),
            id: data_key.id().to_owned(),
        };
        Ok(to_json(&response))
    }

    async fn rekey(&self, body: &[u8]) -> Result<Response<Body>, Reject> {
        let request: wire::RekeyRequest = parse_with_context(body)?;
        let keys = decode_keys(&request.encrypted_keys, "encrypted_keys")?;
        let pair = self
            .service
            .rekey(&keys, &request.context)
            .await
            .map_err(service_error)?;
        Ok(pair_response(pair))
    }

    /// Whether the `Authorization` header carries a configured key. Every
    /// configured key is compared, in constant time, over SHA-256 digests
    /// (so lengths do not leak either).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return false;
        };
        let value = value.as_bytes();
        let Some(token) = value
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
            .and_then(|_| value.get(7..))
        else {
            return false;
        };
        let token = token.trim_ascii();
        if token.is_empty() {
            return false;
        }
        let given = ring::digest::digest(&ring::digest::SHA256, token);
        let mut matched = 0u8;
        for want in &self.api_key_digests {
            let difference = given
                .as_ref()
                .iter()
                .zip(want.as_ref())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            matched |= u8::from(difference == 0);
        }
        matched == 1
    }

    /// `req_` and 24 random hex digits.
    fn new_request_id(&self) -> String {
        let mut bytes = [0u8; 12];
        match self.rng.fill(&mut bytes) {
            Ok(()) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut id = String::with_capacity(4 + 2 * bytes.len());
                id.push_str("req_");
                for byte in bytes {
                    id.push(char::from(HEX[usize::from(byte >> 4)]));
                    id.push(char::from(HEX[usize::from(byte & 0x0f)]));
                }
                id
            }
            Err(_) => format!(
                "req_local_{}",
                self.fallback_ids.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }
}

enum BodyError {
    TooLarge,
    Unreadable,
}

/// Reads at most `limit` bytes of body. A larger body is read on and thrown
/// away (up to [`MAX_DRAIN_BYTES`]), never buffered, so the client gets to
/// read the 413.
async fn read_body<B: RequestBody>(
    request: Request<B>,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let drain_limit = limit.saturating_add(MAX_DRAIN_BYTES);
    if declared.is_some_and(|len| len > drain_limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let capacity = declared
        .and_then(|len| usize::try_from(len).ok())
        .unwrap_or(0)
        .min(limit);
    let mut body = request.into_body();
    let read = async move {
        let mut buffer = Vec::with_capacity(capacity);
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| BodyError::Unreadable)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen = seen.saturating_add(data.len());
            if seen > drain_limit {
                break;
            }
            if seen <= limit {
                buffer.extend_from_slice(&data);
            }
        }
        if seen > limit {
            Err(BodyError::TooLarge)
        } else {
            Ok(buffer)
        }
    };
    tokio::time::timeout(BODY_READ_TIMEOUT, read)
        .await
        .unwrap_or(Err(BodyError::Unreadable))
}

/// A refused request: its status and the message for the client.
struct Reject {
    status: StatusCode,
    message: String,
}

impl Reject {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Reject {
            status,
            message: message.into(),
        }
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Reject> {
    serde_json::from_slice(body).map_err(|e| {
        let message = match e.classify() {
            serde_json::error::Category::Data => format!("invalid request body: {e}"),
            serde_json::error::Category::Eof => "request body is truncated JSON".to_owned(),
            _ => "request body is not valid JSON".to_owned(),
        };
        Reject::new(StatusCode::BAD_REQUEST, message)
    })
}

/// [`parse`] for a request with a `context`: a context of strings that
/// breaks the rules (too many entries, a name too long, ...) is a 422, as
/// WorkOS answers, not a 400.
fn parse_with_context<T: DeserializeOwned>(body: &[u8]) -> Result<T, Reject> {
    parse(body).map_err(|reject| context_rejection(body).unwrap_or(reject))
}

fn context_rejection(body: &[u8]) -> Option<Reject> {
    #[derive(serde::Deserialize)]
    struct ContextOnly {
        context: std::collections::BTreeMap<String, String>,
    }
    let ContextOnly { context } = serde_json::from_slice(body).ok()?;
    vault_api::KeyContext::try_from(context)
        .err()
        .map(context_error)
}

fn decode_keys(text: &str, field: &str) -> Result<Vec<u8>, Reject> {
    vault_format::b64::decode(text).map_err(|_| {
        Reject::new(
            StatusCode::BAD_REQUEST,
            format!("{field} is not valid base64"),
        )
    })
}

fn context_error(error: vault_api::ContextError) -> Reject {
    Reject::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string())
}

fn service_error(error: vault_api::Error) -> Reject {
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

fn pair_response(pair: DataKeyPair) -> Response<Body> {
    let encrypted_keys = pair.encrypted_keys_base64();
    let response = wire::DataKeyResponse {
        data_key: SecretString::from(pair.data_key.secret_base64()),
        id: pair.id().to_owned(),
        context: pair.context,
        encrypted_keys,
    };
    to_json(&response)
}

fn to_json<T: Serialize>(body: &T) -> Response<Body> {
    match serde_json::to_vec(body) {
        Ok(bytes) => json(StatusCode::OK, bytes),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

/// A JSON error answer, `{"error": message}`.
fn error(status: StatusCode, message: &str) -> Response<Body> {
    let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
    let body = serde_json::to_vec(&wire::ErrorResponse::new(message))
        .unwrap_or_else(|_| br#"{"error":"internal error"}"#.to_vec());
    json(status, body)
}

/// A JSON answer. Key material must not be cached by anything in between.
fn json(status: StatusCode, body: Vec<u8>) -> Response<Body> {
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
