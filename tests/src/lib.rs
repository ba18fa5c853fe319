//! End-to-end tests live in `tests/tests/`; this library holds shared helpers.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::{Method, Request, Version};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ring::rand::{SecureRandom, SystemRandom};
use vault_api::{
    DataKey, DataKeyPair, Error, ErrorKind, HttpKeyService, HttpKeyServiceBuilder, KeyContext,
    KeyService,
};
use vault_server::{Faults, Server, ServerConfig};

/// The API key test servers accept.
pub const API_KEY: &str = "sk_test_vault_rs_e2e_4f1c9a";

/// The key service behind test servers. Every end-to-end test gets its
/// backing service here, so switching to another implementation is one
/// change.
pub fn backing_service() -> Arc<dyn KeyService> {
    Arc::new(vault_local::LocalKeyService::ephemeral())
}

/// A key service in memory: random data keys, WorkOS-shaped blobs
/// (`WOS.EKM.v1\0`, the 36-character id, random filler) remembered in a
/// map. `rekey` keeps the data key and hands out a new blob.
pub struct MemoryKeyService {
    keys: Mutex<HashMap<Vec<u8>, DataKey>>,
    rng: SystemRandom,
}

impl MemoryKeyService {
    /// An empty service.
    pub fn new() -> Self {
        MemoryKeyService {
            keys: Mutex::new(HashMap::new()),
            rng: SystemRandom::new(),
        }
    }

    fn random<const N: usize>(&self) -> Result<[u8; N], Error> {
        let mut bytes = [0u8; N];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| Error::new(ErrorKind::Keyring, "no randomness"))?;
        Ok(bytes)
    }

    /// A new blob for the data key `id`, remembered with its key.
    fn wrap(&self, context: &KeyContext, data_key: DataKey) -> Result<DataKeyPair, Error> {
        let mut blob = vault_format::__private::WORKOS_MAGIC.to_vec();
        blob.extend_from_slice(data_key.id().as_bytes());
        blob.extend_from_slice(&self.random::<48>()?);
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(blob.clone(), data_key.duplicate());
        Ok(DataKeyPair::new(context.clone(), data_key, blob))
    }

    fn unwrap_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(encrypted_keys)
            .map(DataKey::duplicate)
            .ok_or_else(|| Error::new(ErrorKind::InvalidKeys, "unknown encrypted keys"))
    }
}

impl Default for MemoryKeyService {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryKeyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("MemoryKeyService")
            .field("keys", &count)
            .finish()
    }
}

#[async_trait]
impl KeyService for MemoryKeyService {
    async fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        context.validate()?;
        let id = vault_format::__private::id::uuid_v4(self.random::<16>()?);
        let data_key = DataKey::new(id, self.random::<32>()?);
        self.wrap(context, data_key)
    }

    async fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        self.unwrap_key(encrypted_keys)
    }

    async fn rekey(
        &self,
        encrypted_keys: &[u8],
        context: &KeyContext,
    ) -> Result<DataKeyPair, Error> {
        context.validate()?;
        let data_key = self.unwrap_key(encrypted_keys)?;
        self.wrap(context, data_key)
    }
}

/// A server on `127.0.0.1:0` over [`backing_service`], accepting
/// [`API_KEY`], with a fault handle.
pub async fn start_server() -> Server {
    start_server_with(ServerConfig::new()).await
}

/// As [`start_server`], with more configuration. [`API_KEY`] and a fault
/// handle are added.
pub async fn start_server_with(config: ServerConfig) -> Server {
    let config = config.api_key(API_KEY).faults(Faults::new());
    Server::bind(
        "127.0.0.1:0".parse().expect("address"),
        backing_service(),
        config,
    )
    .await
    .expect("bind a test server")
}

/// A client for `server` with [`API_KEY`] and a tiny backoff (1 ms, at most
/// 10 ms), so retries are quick; change what a test needs.
pub fn client_for(server: &Server) -> HttpKeyServiceBuilder {
    HttpKeyService::builder()
        .api_key(API_KEY)
        .base_url(server.url())
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
        .timeout(Duration::from_secs(10))
        .deadline(Duration::from_secs(30))
}

/// A valid one-entry context.
pub fn context(organization: &str) -> KeyContext {
    KeyContext::new()
        .with("organization_id", organization)
        .expect("valid context")
}

/// What a raw request got back.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
    /// The HTTP version spoken.
    pub version: Version,
}

impl RawResponse {
    /// A header as text ("" when missing).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as JSON (panics if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The `error` field of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("an error message")
            .to_owned()
    }
}

/// Sends one request as given, with `Authorization: Bearer api_key` when
/// `api_key` is given and `Content-Type: application/json` when there is a
/// body. HTTP/2 with prior knowledge when `http2` is set. Not retried.
pub async fn raw_request(
    server: &Server,
    method: Method,
    path: &str,
    api_key: Option<&str>,
    body: impl Into<Vec<u8>>,
    http2: bool,
) -> RawResponse {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build_http::<Full<Bytes>>();
    let body: Vec<u8> = body.into();
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{}{path}", server.url()));
    if let Some(key) = api_key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .expect("a valid request");
    let response = client.request(request).await.expect("an answer");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("a body").to_bytes().to_vec();
    RawResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
        version: parts.version,
    }
}

/// A server that answers every request with the same status and body
/// (`Content-Type: application/json`), to feed clients malformed answers.
/// Stops when dropped.
pub struct CannedServer {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl CannedServer {
    /// Starts one on `127.0.0.1:0`.
    pub async fn start(status: u16, body: impl Into<Bytes>) -> CannedServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("an address");
        let status = hyper::StatusCode::from_u16(status).expect("a status");
        let body: Bytes = body.into();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        let response = hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .header("x-request-id", "req_canned")
                            .body(Full::new(body.clone()));
                        async move { response }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        CannedServer { addr, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for CannedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub mod capture;
pub mod child;
pub mod pki;
pub mod tinyproxy;

/// Creates a data key for `organization` through `client` and decrypts
/// its encrypted keys again: both calls must succeed and agree.
pub async fn round_trip(client: &HttpKeyService, organization: &str) -> DataKeyPair {
    let pair = client
        .create_data_key(&context(organization))
        .await
        .expect("a data key");
    let key = client
        .decrypt_data_key(&pair.encrypted_keys)
        .await
        .expect("the data key decrypted");
    assert_eq!(key, pair.data_key);
    pair
}
