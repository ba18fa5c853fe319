//! Graceful shutdown drains requests in flight, over HTTP/1.1 and over
//! HTTP/2 (TLS), synchronised on the key service itself: a gate that holds
//! the request until the test opens it, never a sleep.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, Semaphore};
use vault_api::transport::Proxies;
use vault_api::{DataKey, DataKeyPair, Error, HttpKeyService, KeyContext, KeyService};
use vault_server::{Server, ServerConfig, TlsConfig};
use vault_tests::capture::LogBuffer;
use vault_tests::pki::{TestCa, Validity};
use vault_tests::{backing_service, context, API_KEY};

/// Holds every `create_data_key` until the test adds a permit, telling the
/// test when one arrives.
struct Gate {
    inner: Arc<dyn KeyService>,
    arrived: mpsc::UnboundedSender<()>,
    open: Arc<Semaphore>,
}

#[async_trait]
impl KeyService for Gate {
    async fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        let _ = self.arrived.send(());
        let permit = self.open.acquire().await.expect("the gate is never closed");
        permit.forget();
        self.inner.create_data_key(context).await
    }

    async fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        self.inner.decrypt_data_key(encrypted_keys).await
    }

    async fn rekey(&self, keys: &[u8], context: &KeyContext) -> Result<DataKeyPair, Error> {
        self.inner.rekey(keys, context).await
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

/// Starts a request, shuts the server down while the key service holds
/// it, checks the listener is gone, then opens the gate: the request must
/// still get its answer, and shutdown must wait for it.
async fn drains(tls: Option<(TlsConfig, TestCa)>, version: &str) {
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let open = Arc::new(Semaphore::new(0));
    let service = Arc::new(Gate {
        inner: backing_service(),
        arrived: arrived_tx,
        open: open.clone(),
    });
    let log = LogBuffer::new();
    let mut config = ServerConfig::new().api_key(API_KEY).access_log(log.clone());
    let mut client = HttpKeyService::builder()
        .api_key(API_KEY)
        .max_retries(0)
        .proxies(Proxies::none());
    if let Some((tls, ca)) = tls {
        config = config.tls(tls);
        client = client.root_certificates_pem(ca.pem().into_bytes());
    }
    let server = Server::bind("127.0.0.1:0".parse().expect("addr"), service, config)
        .await
        .expect("bind");
    let address = server.local_addr();
    let client = client.base_url(server.url()).build().expect("a client");
    let call = tokio::spawn(async move { client.create_data_key(&context("org_drain")).await });
    arrived
        .recv()
        .await
        .expect("the request reached the key service");
    assert!(server
        .metrics()
        .render()
        .contains("vault_server_requests_in_flight 1"));

    let shutdown = tokio::spawn(server.shutdown());
    // The listener closes first: wait for that, yielding, not sleeping.
    while tokio::net::TcpStream::connect(address).await.is_ok() {
        tokio::task::yield_now().await;
    }
    assert!(!shutdown.is_finished(), "shutdown waits for the request");
    assert!(!call.is_finished(), "the request is still held");

    open.add_permits(1);
    let pair = call
        .await
        .expect("the call ran")
        .expect("answered despite the shutdown");
    assert_eq!(pair.context, context("org_drain"));
    shutdown.await.expect("joined").expect("a clean shutdown");
    let lines = log.json_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["version"], version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_an_http1_request_in_flight() {
    drains(None, "HTTP/1.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_an_h2_request_in_flight() {
    let ca = TestCa::new("shutdown CA");
    let cert = ca.issue(&["127.0.0.1"], Validity::Current);
    let tls = TlsConfig::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).expect("tls");
    drains(Some((tls, ca)), "HTTP/2.0").await;
}
