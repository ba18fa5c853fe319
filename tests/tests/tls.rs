//! HTTPS end to end: vault-server and `workos-vault serve` over TLS with a CA the
//! test makes, and HttpKeyService's trust decisions against them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use vault_api::transport::Proxies;
use vault_api::{ErrorKind, HttpKeyService, KeyService};
use vault_tests::child::rerun_with_env;
use vault_tests::pki::{ca_as_server_cert, tls_server, trusting, ServerCert, TestCa, Validity};
use vault_tests::{client_for, context, API_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_round_trips_over_h2_with_a_private_ca() {
    let ca = TestCa::new("vault test CA");
    let (server, log) = tls_server(&ca.issue(&["127.0.0.1"], Validity::Current)).await;
    assert!(server.url().starts_with("https://"), "{}", server.url());
    vault_tests::round_trip(&trusting(&server, &ca.pem()), "org_tls").await;
    let lines = log.wait_for_lines(2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert_eq!(line["tls"], true, "{line}");
        assert_eq!(line["version"], "HTTP/2.0", "ALPN chose h2: {line}");
        assert_eq!(line["status"], 200, "{line}");
    }
    assert_eq!(lines[1]["route"], "decrypt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_offers_h2_first_and_still_speaks_http1() {
    let ca = TestCa::new("vault test CA");
    let (server, _log) = tls_server(&ca.issue(&["127.0.0.1"], Validity::Current)).await;
    let h2 = handshake(server.local_addr(), &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (status, version) = http1_get(server.local_addr(), &ca, "/health/ready").await;
    assert_eq!(status, 200);
    assert_eq!(version, hyper::Version::HTTP_11);
}

/// GETs `path` over TLS offering only `http/1.1`: the status and version.
async fn http1_get(address: SocketAddr, ca: &TestCa, path: &str) -> (u16, hyper::Version) {
    let http1 = handshake(address, ca, &[b"http/1.1"]).await;
    assert_eq!(http1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(http1))
            .await
            .expect("an HTTP/1.1 connection over TLS");
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header("host", "127.0.0.1")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .expect("a request");
    let response = sender.send_request(request).await.expect("an answer");
    (response.status().as_u16(), response.version())
}

/// A TLS connection to `server`, trusting `ca`, offering `alpn`.
async fn handshake(
    address: SocketAddr,
    ca: &TestCa,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pem_to_der(&ca.pem())).expect("the CA as a root");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let stream = TcpStream::connect(address).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("a server name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .expect("a TLS handshake")
}

fn pem_to_der(pem: &str) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).expect("a PEM certificate")
}

/// The error of one call that must be refused before anything is sent.
async fn refused(client: &HttpKeyService) -> vault_api::Error {
    let error = client
        .create_data_key(&context("org_refused"))
        .await
        .expect_err("the certificate must be refused");
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert!(
        !error.is_retryable(),
        "a refused certificate is final: {error}"
    );
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_certificate_as_the_server_certificate_is_refused_with_the_fix() {
    let (cert, ca_pem) = ca_as_server_cert(&["127.0.0.1"]);
    let (server, _log) = tls_server(&cert).await;
    let text = refused(&trusting(&server, &ca_pem)).await.to_string();
    assert!(text.contains("TLS certificate was refused"), "{text}");
    assert!(text.contains("it is a CA certificate"), "{text}");
    assert!(text.contains("basicConstraints=CA:FALSE"), "{text}");
    assert!(!text.contains("OtherError"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_of_another_ca_expired_or_for_another_host_are_refused() {
    let ca = TestCa::new("vault test CA");
    let cases = [
        (
            TestCa::new("someone else's CA").issue(&["127.0.0.1"], Validity::Current),
            "it is not signed by a trusted certificate authority",
        ),
        (
            ca.issue(&["127.0.0.1"], Validity::Expired),
            "it has expired",
        ),
        (
            ca.issue(&["other.example"], Validity::Current),
            "it is not valid for the host name",
        ),
    ];
    for (cert, reason) in cases {
        let (server, log) = tls_server(&cert).await;
        let error = refused(&trusting(&server, &ca.pem())).await;
        let text = error.to_string();
        assert!(text.contains("TLS certificate was refused"), "{text}");
        assert!(text.contains(reason), "{reason}: {text}");
        assert!(!text.contains(API_KEY));
        assert!(log.json_lines().is_empty(), "no request got through");
        assert_eq!(server.faults().requests(vault_api::wire::DATA_KEY_PATH), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_roots_do_not_trust_a_private_ca() {
    let ca = TestCa::new("vault test CA");
    let (server, _log) = tls_server(&ca.issue(&["127.0.0.1"], Validity::Current)).await;
    // The Mozilla roots, unless SSL_CERT_FILE names a bundle: neither
    // holds this CA.
    let client = client_for(&server)
        .proxies(Proxies::none())
        .build()
        .expect("a client");
    let error = refused(&client).await;
    assert!(error.to_string().contains("SSL_CERT_FILE"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_cert_file_names_the_trusted_cas() {
    let ca = TestCa::new("vault test CA");
    let (server, log) = tls_server(&ca.issue(&["127.0.0.1"], Validity::Current)).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, ca.pem()).expect("write the bundle");
    let url = server.url();
    let bundle = bundle.to_string_lossy().into_owned();
    tokio::task::spawn_blocking(move || {
        rerun_with_env(
            "child_trusts_ssl_cert_file",
            &[("SSL_CERT_FILE", &bundle), ("WORKOS_VAULT_TEST_URL", &url)],
        );
    })
    .await
    .expect("the child ran");
    assert_eq!(
        log.wait_for_lines(1).len(),
        1,
        "the child's request arrived"
    );
}

#[tokio::test]
#[ignore = "run by ssl_cert_file_names_the_trusted_cas, with SSL_CERT_FILE set"]
async fn child_trusts_ssl_cert_file() {
    let url = std::env::var("WORKOS_VAULT_TEST_URL").expect("WORKOS_VAULT_TEST_URL");
    let client = HttpKeyService::builder()
        .api_key(API_KEY)
        .base_url(url)
        .proxies(Proxies::none())
        .build()
        .expect("a client trusting SSL_CERT_FILE");
    client
        .create_data_key(&context("org_env"))
        .await
        .expect("the CA of SSL_CERT_FILE is trusted");
}

/// `workos-vault serve` with a keyring and a certificate in `dir`.
struct ServeProcess {
    child: Child,
    url: String,
    stderr: std::io::Lines<BufReader<std::process::ChildStderr>>,
}

impl ServeProcess {
    fn start(dir: &std::path::Path) -> ServeProcess {
        let mut child = Command::new(vault_binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("WORKOS_VAULT_SERVER_API_KEY", API_KEY)
            .arg("--tls-cert")
            .arg(dir.join("cert.pem"))
            .arg("--tls-key")
            .arg(dir.join("key.pem"))
            .env("WORKOS_VAULT_KEYRING", dir.join("keyring.json"))
            .env_remove("WORKOS_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start workos-vault serve");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let marker = "serving WorkOS key endpoints on ";
        let line = wait_for(&mut stderr, |line| line.contains(marker));
        let url = line
            .split(marker)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the URL")
            .to_owned();
        ServeProcess { child, url, stderr }
    }

    fn hang_up(&mut self) -> String {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        wait_for(&mut self.stderr, |line| line.contains("SIGHUP"))
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads lines until one satisfies `want`; panics if the process ends.
fn wait_for(
    lines: &mut std::io::Lines<BufReader<std::process::ChildStderr>>,
    want: impl Fn(&str) -> bool,
) -> String {
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("read stderr");
        if want(&line) {
            return line;
        }
        seen.push(line);
    }
    panic!(
        "workos-vault serve ended before the line wanted:\n{}",
        seen.join("\n")
    );
}

/// The `workos-vault` binary next to this test's deps folder (built by `cargo
/// test --workspace`).
fn vault_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target profile dir");
    let binary = dir.join(format!("workos-vault{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p vault-cli`)",
        binary.display()
    );
    binary
}

fn write_cert(dir: &std::path::Path, cert: &ServerCert) {
    // Written whole then renamed, as a certificate manager does.
    for (name, text) in [("cert.pem", &cert.cert_pem), ("key.pem", &cert.key_pem)] {
        let staged = dir.join(format!("{name}.new"));
        std::fs::write(&staged, text).expect("write PEM");
        std::fs::rename(&staged, dir.join(name)).expect("rename PEM");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_serve_speaks_tls_and_reloads_its_certificate_on_sighup() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (old_ca, new_ca) = (TestCa::new("old CA"), TestCa::new("new CA"));
    write_cert(dir.path(), &old_ca.issue(&["127.0.0.1"], Validity::Current));
    let mut serve = ServeProcess::start(dir.path());
    assert!(serve.url.starts_with("https://127.0.0.1:"), "{}", serve.url);
    let url = serve.url.clone();
    let client = |ca: &TestCa| {
        HttpKeyService::builder()
            .api_key(API_KEY)
            .base_url(url.clone())
            .root_certificates_pem(ca.pem().into_bytes())
            .proxies(Proxies::none())
            .max_retries(0)
            .build()
            .expect("a client")
    };
    let pair = client(&old_ca)
        .create_data_key(&context("org_serve"))
        .await
        .expect("workos-vault serve answers over TLS");
    refused(&client(&new_ca)).await;

    // A broken file is refused and the certificate in use stays.
    std::fs::write(dir.path().join("key.pem"), "not a key").expect("break the key");
    let kept = serve.hang_up();
    assert!(kept.contains("kept the TLS certificate in use"), "{kept}");
    client(&old_ca)
        .decrypt_data_key(&pair.encrypted_keys)
        .await
        .expect("still the old certificate");

    write_cert(dir.path(), &new_ca.issue(&["127.0.0.1"], Validity::Current));
    let reloaded = serve.hang_up();
    assert!(
        reloaded.contains("reloaded the TLS certificate"),
        "{reloaded}"
    );
    // A certificate path on a FIFO nobody writes: the reload times out on
    // its own thread, and serving goes on with the certificate in use.
    let fifo = dir.path().join("cert.pem");
    make_fifo(&fifo);
    let stuck = serve.hang_up();
    assert!(
        stuck.contains("kept the TLS certificate in use") && stuck.contains("took over"),
        "{stuck}"
    );
    release_fifo(fifo).await;
    write_cert(dir.path(), &new_ca.issue(&["127.0.0.1"], Validity::Current));
    let key = client(&new_ca)
        .decrypt_data_key(&pair.encrypted_keys)
        .await
        .expect("the new certificate is presented");
    assert_eq!(key, pair.data_key);
    refused(&client(&old_ca)).await;

    // Alive is not ready: a keyring that cannot be read fails the probe.
    let address: SocketAddr = url["https://".len()..].parse().expect("an address");
    assert_eq!(http1_get(address, &new_ca, "/health/ready").await.0, 200);
    std::fs::remove_file(dir.path().join("keyring.json")).expect("remove the keyring");
    assert_eq!(http1_get(address, &new_ca, "/health/ready").await.0, 503);
    assert_eq!(http1_get(address, &new_ca, "/health").await.0, 200);
}

/// Makes `path` a FIFO (named pipe) that nobody writes: opening it for
/// reading blocks.
fn make_fifo(path: &std::path::Path) {
    std::fs::remove_file(path).expect("remove the file");
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Ends a read stuck on the FIFO at `path`: opens it for writing (which
/// meets the stuck reader) and closes it, so the reader sees end of file.
async fn release_fifo(path: std::path::PathBuf) {
    tokio::task::spawn_blocking(move || {
        drop(
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open the FIFO"),
        );
    })
    .await
    .expect("the FIFO released");
}

// One thread for everything: a reload that blocked the runtime would stop
// the TLS handshake and the metrics below outright.
#[tokio::test(flavor = "current_thread")]
async fn a_reload_stuck_on_a_fifo_stops_neither_tls_nor_metrics() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = TestCa::new("fifo CA");
    write_cert(dir.path(), &ca.issue(&["127.0.0.1"], Validity::Current));
    let tls = vault_server::TlsConfig::from_pem_files(
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    )
    .expect("load the certificate");
    let metrics = vault_server::Metrics::new();
    let server = vault_tests::start_server_with(
        vault_server::ServerConfig::new()
            .tls(tls.clone())
            .metrics(metrics.clone()),
    )
    .await;
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let metrics_address = metrics_listener.local_addr().expect("addr");
    let scraper = tokio::spawn(vault_server::serve_metrics(metrics_listener, metrics));

    let fifo = dir.path().join("cert.pem");
    make_fifo(&fifo);
    let timeout = std::time::Duration::from_millis(300);
    let error = tls
        .reload_within(timeout)
        .await
        .expect_err("nobody writes the FIFO");
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut, "{error}");
    // The read is still stuck: another reload does not pile up behind it.
    let error = tls.reload_within(timeout).await.expect_err("still stuck");
    assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock, "{error}");

    // TLS and metrics are served all the while, with the old certificate.
    vault_tests::round_trip(&trusting(&server, &ca.pem()), "org_fifo").await;
    let mut scrape = TcpStream::connect(metrics_address).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    scrape
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: m\r\nconnection: close\r\n\r\n")
        .await
        .expect("ask for the metrics");
    let mut text = String::new();
    scrape.read_to_string(&mut text).await.expect("the metrics");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("vault_server_requests_total"), "{text}");

    release_fifo(fifo).await;
    scraper.abort();
    server.shutdown().await.expect("a clean shutdown");
}
