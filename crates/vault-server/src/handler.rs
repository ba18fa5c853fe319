//! One request: routing, authentication, the body limit, the key service
//! and the JSON answer (and, with the `test-util` feature, injected faults
//! first).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode, Version};
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use tracing::Instrument;
use vault_api::wire;
use vault_api::{KeyService, ObjectService};

use crate::access_log::{AccessLog, Entry};
use crate::body::{read_body, BodyError, RequestBody};
use crate::metrics::Metrics;
use crate::ready::ReadyProbe;
use crate::reply::{self, Body, Reject};
use crate::route::Route;
use crate::ServerConfig;

/// Why a request gets no answer: only an injected fault drops one.
#[cfg(feature = "test-util")]
pub(crate) use crate::faults::Dropped as NoAnswer;
/// Why a request gets no answer: without fault injection, it always gets
/// one.
#[cfg(not(feature = "test-util"))]
pub(crate) type NoAnswer = std::convert::Infallible;

/// Longest path written to logs.
const MAX_LOGGED_PATH_CHARS: usize = 100;

/// Where a request came from, for the access log.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Peer {
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) tls: bool,
}

/// What every connection shares.
pub(crate) struct App {
    service: Arc<dyn KeyService>,
    /// The objects API's service, when the server has one.
    objects: Option<Arc<dyn ObjectService>>,
    /// SHA-256 of each accepted API key, computed once: comparing
    /// fixed-length digests keeps the comparison constant-time whatever the
    /// keys' lengths, and the keys themselves need not stay in memory.
    api_key_digests: Vec<ring::digest::Digest>,
    max_body_bytes: usize,
    metrics: Metrics,
    access_log: Option<AccessLog>,
    ready: Arc<ReadyProbe>,
    #[cfg(feature = "test-util")]
    faults: crate::Faults,
    rng: SystemRandom,
    fallback_ids: AtomicU64,
}

impl App {
    pub(crate) fn new(service: Arc<dyn KeyService>, config: ServerConfig) -> Arc<App> {
        let ready = ReadyProbe::new(
            service.clone(),
            config.readiness,
            config.limits.ready_timeout,
        );
        Arc::new(App {
            service,
            objects: config.objects,
            api_key_digests: config
                .api_keys
                .iter()
                .map(|key| sha256(key.expose_secret().as_bytes()))
                .collect(),
            max_body_bytes: config.limits.max_body_bytes,
            metrics: config.metrics,
            access_log: config.access_log,
            ready,
            #[cfg(feature = "test-util")]
            faults: config.faults,
            rng: SystemRandom::new(),
            fallback_ids: AtomicU64::new(0),
        })
    }

    /// Waits, on a blocking thread and for at most `timeout`, until the
    /// access log has written every line queued so far.
    pub(crate) async fn flush_access_log(&self, timeout: std::time::Duration) {
        if let Some(log) = self.access_log.clone() {
            let flushed = tokio::task::spawn_blocking(move || log.flush(timeout)).await;
            if !matches!(flushed, Ok(true)) {
                tracing::warn!("the access log did not drain in time: lines may be lost");
            }
        }
    }

    /// The metrics the requests are counted in.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Answers one request in a span of its own, with a request id; counts
    /// it and writes its access log line.
    pub(crate) async fn handle<B: RequestBody>(
        self: Arc<Self>,
        request: Request<B>,
        peer: Peer,
    ) -> Result<Response<Body>, NoAnswer> {
        let started = Instant::now();
        let _in_flight = self.metrics.start();
        let request_id = self.new_request_id();
        let path: String = request
            .uri()
            .path()
            .chars()
            .take(MAX_LOGGED_PATH_CHARS)
            .collect();
        let (method, version) = (request.method().clone(), request.version());
        let route = Route::of(request.uri().path());
        let span = tracing::info_span!(
            "vault_server.request",
            method = %method,
            path = %path,
            request_id = %request_id,
            status = tracing::field::Empty,
        );
        let answer = self.answer(route, request).instrument(span.clone()).await;
        let status = answer
            .as_ref()
            .ok()
            .map(|response| response.status().as_u16());
        if let Some(log) = &self.access_log {
            let logged = log.write(&Entry {
                request_id: &request_id,
                remote: peer.remote,
                tls: peer.tls,
                method: method.as_str(),
                path: &path,
                route: route.label(),
                version,
                status,
                took: started.elapsed(),
            });
            self.metrics.access_logged(logged);
        }
        let _entered = span.enter();
        #[cfg(feature = "test-util")]
        if answer.is_err() {
            tracing::warn!("dropping the connection (injected fault)");
        }
        let mut response = answer?;
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        log_status(response.status());
        self.metrics
            .answered(route, response.status().as_u16(), started.elapsed());
        Ok(response)
    }

    async fn answer<B: RequestBody>(
        &self,
        route: Route,
        request: Request<B>,
    ) -> Result<Response<Body>, NoAnswer> {
        #[cfg(feature = "test-util")]
        if let Some(response) = self.inject_fault(route, &request).await? {
            return Ok(response);
        }
        if let Some(response) = self.answer_from_head(route, &request) {
            return Ok(response);
        }
        if route == Route::Ready {
            return Ok(self.ready().await);
        }
        let version = request.version();
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let body = match read_body(request, self.max_body_bytes).await {
            Ok(body) => body,
            Err(error) => return Ok(self.body_refusal(error, version)),
        };
        let answer = match route {
            Route::DataKey => self.create_data_key(&body).await,
            Route::Decrypt => self.decrypt(&body).await,
            route if route.is_object() => {
                let objects = self.objects.as_deref();
                crate::objects::answer(objects, &self.metrics, route, &method, &uri, &body).await
            }
            _ => self.rekey(&body).await,
        };
        Ok(answer.unwrap_or_else(Reject::into_response))
    }

    /// The answer when the head alone decides it: an unknown path, a
    /// method the route does not take, the health check, or a missing or
    /// wrong API key. `None` when the request goes on to the key service.
    fn answer_from_head<B>(&self, route: Route, request: &Request<B>) -> Option<Response<Body>> {
        let Some(allow) = route.allow() else {
            return Some(reply::error(StatusCode::NOT_FOUND, "not found"));
        };
        if !route.accepts(request.method()) {
            return Some(reply::error_with(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
                header::ALLOW,
                HeaderValue::from_static(allow),
            ));
        }
        match route {
            Route::Health => {
                return Some(reply::json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec()))
            }
            // Probes carry no API key; the readiness check is async.
            Route::Ready => return None,
            _ => {}
        }
        if !self.authorized(request.headers()) {
            return Some(reply::error_with(
                StatusCode::UNAUTHORIZED,
                "missing or invalid API key",
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            ));
        }
        None
    }

    /// The answer to a body that was not read: 413 (closing an HTTP/1
    /// connection, whose unread rest is not worth draining) or 400.
    fn body_refusal(&self, error: BodyError, version: Version) -> Response<Body> {
        match error {
            BodyError::TooLarge => {
                let mut response = reply::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("request body is over {} bytes", self.max_body_bytes),
                );
                if version <= Version::HTTP_11 {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                response
            }
            BodyError::Unreadable => {
                reply::error(StatusCode::BAD_REQUEST, "request body could not be read")
            }
        }
    }

    /// 200 when the key service answers the readiness probe in time,
    /// else 503 with `Retry-After`. The reason goes to the log, not to the
    /// unauthenticated prober.
    async fn ready(&self) -> Response<Body> {
        match self.ready.verdict().await {
            Ok(()) => reply::json(StatusCode::OK, br#"{"status":"ready"}"#.to_vec()),
            Err(reason) => {
                tracing::warn!(%reason, "not ready");
                let mut response = reply::json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    br#"{"status":"not ready","error":"the key service is not ready"}"#.to_vec(),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, reply::retry_after());
                response
            }
        }
    }

    /// [`reply::service_error`], counted.
    fn service_error(&self, error: vault_api::Error) -> Reject {
        self.metrics.service_error(error.kind());
        reply::service_error(error)
    }

    async fn create_data_key(&self, body: &[u8]) -> Result<Response<Body>, Reject> {
        let request: wire::CreateDataKeyRequest = reply::parse_with_context(body)?;
        let pair = self
            .service
            .create_data_key(&request.context)
            .await
            .map_err(|e| self.service_error(e))?;
        Ok(reply::pair_response(pair))
    }

    async fn decrypt(&self, body: &[u8]) -> Result<Response<Body>, Reject> {
        let request: wire::DecryptDataKeyRequest = reply::parse(body)?;
        let keys = reply::decode_keys(&request.keys, "keys")?;
        let data_key = self
            .service
            .decrypt_data_key(&keys)
            .await
            .map_err(|e| self.service_error(e))?;
        Ok(reply::data_key_response(&data_key))
    }

    async fn rekey(&self, body: &[u8]) -> Result<Response<Body>, Reject> {
        let request: wire::RekeyRequest = reply::parse_with_context(body)?;
        let keys = reply::decode_keys(&request.encrypted_keys, "encrypted_keys")?;
        let pair = self
            .service
            .rekey(&keys, &request.context)
            .await
            .map_err(|e| self.service_error(e))?;
        Ok(reply::pair_response(pair))
    }

    /// Whether the `Authorization` header carries a configured key. Every
    /// configured key is compared, in constant time, over SHA-256 digests
    /// (so lengths do not leak either).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| bearer_token(value.as_bytes()))
        else {
            return false;
        };
        let given = sha256(token);
        let matched = self
            .api_key_digests
            .iter()
            .fold(subtle::Choice::from(0), |matched, want| {
                matched | given.as_ref().ct_eq(want.as_ref())
            });
        matched.into()
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

#[cfg(feature = "test-util")]
impl App {
    /// Counts the request and applies the fault armed for it, if any: a
    /// delay, then a dropped connection or a status answer.
    async fn inject_fault<B>(
        &self,
        route: Route,
        request: &Request<B>,
    ) -> Result<Option<Response<Body>>, crate::faults::Dropped> {
        use crate::faults::{Dropped, Fault};

        let idempotency_key = request
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok());
        let (delay, fault) = self.faults.on_request(route, idempotency_key);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let (status, retry_after) = match fault {
            None => return Ok(None),
            Some(Fault::Drop) => return Err(Dropped),
            Some(Fault::Status(status, retry_after)) => (status, retry_after),
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = status.canonical_reason().unwrap_or("injected fault");
        let mut response = reply::error(status, message);
        if let Some(value) = retry_after.and_then(|v| HeaderValue::try_from(v).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        Ok(Some(response))
    }
}

/// The token of `Bearer <token>` (scheme in any case, token trimmed), if
/// not empty.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = value.get(7..)?.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn sha256(bytes: &[u8]) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, bytes)
}

fn log_status(status: StatusCode) {
    let status = status.as_u16();
    tracing::Span::current().record("status", status);
    if status >= 500 {
        tracing::warn!(status, "answered with a server error");
    } else {
        tracing::info!(status, "answered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_trimmed_and_the_scheme_is_any_case() {
        assert_eq!(bearer_token(b"Bearer sk_1"), Some(&b"sk_1"[..]));
        assert_eq!(bearer_token(b"bEaReR   sk_1 "), Some(&b"sk_1"[..]));
        for refused in [
            &b""[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer    ",
            b"Basic sk_1",
            b"Bearersk_1",
        ] {
            assert_eq!(bearer_token(refused), None, "{refused:?}");
        }
    }
}
