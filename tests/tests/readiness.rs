//! `/health/ready` asks the key service itself, within a time bound, and
//! key service failures are reported: 503 with `Retry-After` when the key
//! service is unavailable, and the cause in the log (never a secret).

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use vault::TransitKeyService;
use vault_api::KeyService;
use vault_local::LocalKeyService;
use vault_server::{Server, ServerConfig};
use vault_tests::capture::traces;
use vault_tests::{client_for, context, raw_request, API_KEY};

/// A Transit token: it must never reach the log.
const TOKEN: &str = "s.readiness-token-5e2f90c1";

async fn serve(service: Arc<dyn KeyService>, config: ServerConfig) -> Server {
    Server::bind(
        "127.0.0.1:0".parse().expect("address"),
        service,
        config.api_key(API_KEY),
    )
    .await
    .expect("bind a test server")
}

/// A Transit engine that accepts connections and never answers.
async fn hung_transit() -> (tokio::net::TcpListener, TransitKeyService) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let service = TransitKeyService::builder()
        .address(format!("http://{}", listener.local_addr().expect("addr")))
        .token(TOKEN)
        .key("vault-key")
        .timeout(Duration::from_millis(300))
        .max_retries(0)
        .build()
        .expect("a Transit service");
    (listener, service)
}

#[tokio::test]
async fn ready_is_503_while_transit_is_hung_and_key_calls_are_503_with_retry_after() {
    traces();
    let (listener, transit) = hung_transit().await;
    // The listener's backlog completes connections nobody serves.
    let server = serve(
        Arc::new(transit),
        ServerConfig::new().ready_timeout(Duration::from_millis(200)),
    )
    .await;
    let ready = raw_request(&server, Method::GET, "/health/ready", None, "", false).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.header("retry-after"), "1");
    assert_eq!(ready.json()["status"], "not ready");
    assert_eq!(
        raw_request(&server, Method::GET, "/health", None, "", false)
            .await
            .status,
        200,
        "alive all the same"
    );

    let body = r#"{"context":{"organization_id":"org_hung"}}"#;
    let call = raw_request(
        &server,
        Method::POST,
        "/vault/v1/keys/data-key",
        Some(API_KEY),
        body,
        false,
    )
    .await;
    assert_eq!(call.status, 503, "{:?}", call.body);
    assert_eq!(call.header("retry-after"), "1");
    assert!(call.error().contains("unavailable"), "{}", call.error());

    let log = traces();
    assert!(
        log.contains("not ready") && log.contains("did not answer the readiness probe"),
        "{log}"
    );
    assert!(log.contains("the key service is unavailable"), "{log}");
    assert!(!log.contains(TOKEN) && !log.contains(API_KEY), "{log}");
    drop(listener);
}

#[tokio::test]
async fn ready_is_503_once_the_keyring_is_garbage_and_the_500s_say_why() {
    traces();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let keyring = dir.path().join("keyring.json");
    let service = Arc::new(LocalKeyService::create(&keyring).expect("a keyring"));
    let server = serve(service, ServerConfig::new()).await;
    let client = client_for(&server)
        .max_retries(0)
        .build()
        .expect("a client");
    client
        .create_data_key(&context("org_before"))
        .await
        .expect("served while the keyring is sound");

    std::fs::write(&keyring, "garbage, not a keyring").expect("overwrite the keyring");
    let ready = raw_request(&server, Method::GET, "/health/ready", None, "", false).await;
    assert_eq!(ready.status, 503);
    assert!(
        !String::from_utf8_lossy(&ready.body).contains("keyring"),
        "reasons stay in the log: {:?}",
        ready.body
    );
    let error = client
        .create_data_key(&context("org_after"))
        .await
        .expect_err("no data key under a garbage keyring");
    assert_eq!(error.status(), Some(500), "{error}");

    let log = traces();
    let path = keyring.display().to_string();
    assert!(
        log.lines()
            .any(|line| line.contains("not ready") && line.contains(&path)),
        "the readiness log names the keyring: {log}"
    );
    assert!(
        log.lines()
            .any(|line| line.contains("the key service failed") && line.contains(&path)),
        "the 500's log names the keyring: {log}"
    );
    assert!(!log.contains(API_KEY), "{log}");
}

#[tokio::test]
async fn ready_is_200_when_the_key_service_round_trips_a_data_key() {
    let server = serve(Arc::new(LocalKeyService::ephemeral()), ServerConfig::new()).await;
    for _ in 0..3 {
        let ready = raw_request(&server, Method::GET, "/health/ready", None, "", false).await;
        assert_eq!(
            (ready.status, ready.json()["status"].clone()),
            (200, "ready".into())
        );
    }
}

/// A key service whose first `create_data_key` panics.
#[derive(Debug)]
struct PanicsOnce {
    inner: LocalKeyService,
    panicked: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl KeyService for PanicsOnce {
    async fn create_data_key(
        &self,
        context: &vault_api::KeyContext,
    ) -> Result<vault_api::DataKeyPair, vault_api::Error> {
        if !self
            .panicked
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("a key service bug");
        }
        self.inner.create_data_key(context).await
    }

    async fn decrypt_data_key(
        &self,
        encrypted_keys: &[u8],
    ) -> Result<vault_api::DataKey, vault_api::Error> {
        self.inner.decrypt_data_key(encrypted_keys).await
    }

    async fn rekey(
        &self,
        encrypted_keys: &[u8],
        context: &vault_api::KeyContext,
    ) -> Result<vault_api::DataKeyPair, vault_api::Error> {
        self.inner.rekey(encrypted_keys, context).await
    }
}

#[tokio::test]
async fn a_probe_that_panicked_does_not_leave_ready_stuck() {
    let service = PanicsOnce {
        inner: LocalKeyService::ephemeral(),
        panicked: std::sync::atomic::AtomicBool::new(false),
    };
    let server = serve(Arc::new(service), ServerConfig::new()).await;
    let probe = || raw_request(&server, Method::GET, "/health/ready", None, "", false);
    assert_eq!(probe().await.status, 503, "the probe panicked");
    assert_eq!(probe().await.status, 200, "the next probe runs afresh");
}

#[tokio::test]
async fn ready_is_503_while_transit_is_unreachable() {
    // A port nobody listens on any more: connections are refused.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr");
    drop(listener);
    let transit = TransitKeyService::builder()
        .address(format!("http://{address}"))
        .token(TOKEN)
        .key("vault-key")
        .max_retries(0)
        .build()
        .expect("a Transit service");
    let server = serve(Arc::new(transit), ServerConfig::new()).await;
    let ready = raw_request(&server, Method::GET, "/health/ready", None, "", false).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.header("retry-after"), "1");
    let call = raw_request(
        &server,
        Method::POST,
        "/vault/v1/keys/data-key",
        Some(API_KEY),
        r#"{"context":{"organization_id":"org_gone"}}"#,
        false,
    )
    .await;
    assert_eq!(call.status, 503, "{:?}", call.body);
    assert_eq!(call.header("retry-after"), "1");
}
