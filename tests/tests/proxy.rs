//! HttpKeyService through a real HTTP proxy (Debian's tinyproxy on
//! loopback): `CONNECT` tunnels for https, absolute-form requests for http,
//! credentials in the proxy URL, `NO_PROXY`, and the environment variables.
//! Skipped with a message when tinyproxy is not installed, unless
//! `WORKOS_VAULT_REQUIRE_TINYPROXY=1` (CI sets it) makes that a failure.

use vault_api::transport::Proxies;
use vault_api::{ErrorKind, HttpKeyService, HttpKeyServiceBuilder, KeyService};
use vault_server::Server;
use vault_tests::child::rerun_with_env;
use vault_tests::pki::{tls_server, TestCa, Validity};
use vault_tests::tinyproxy::Tinyproxy;
use vault_tests::{client_for, context, start_server, API_KEY};

const CREDENTIALS: (&str, &str) = ("vault", "s3cret-proxy-pw");

/// Proxies as the environment `vars` would name them.
fn proxies(vars: &[(&str, String)]) -> Proxies {
    Proxies::from_lookup(|name| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| value.clone())
    })
    .expect("valid proxy variables")
}

/// A TLS test server and its CA.
async fn https_server() -> (Server, TestCa) {
    let ca = TestCa::new("proxy test CA");
    let (server, _log) =
        tls_server(&ca.issue(&["localhost", "127.0.0.1"], Validity::Current)).await;
    (server, ca)
}

/// A client builder for `server` trusting `ca`.
fn builder(server: &Server, ca: &TestCa) -> HttpKeyServiceBuilder {
    client_for(server).root_certificates_pem(ca.pem().into_bytes())
}

/// tinyproxy's line for a request `CONNECT` (not its `CONNECT` log
/// level, which marks every new connection).
fn is_connect(line: &str) -> bool {
    line.contains("): CONNECT ")
}

async fn round_trip(client: &HttpKeyService) {
    vault_tests::round_trip(client, "org_proxy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_goes_through_a_connect_tunnel() {
    let Some(proxy) = Tinyproxy::start(None) else {
        return;
    };
    let (server, ca) = https_server().await;
    let client = builder(&server, &ca)
        .proxies(proxies(&[("HTTPS_PROXY", proxy.url(None))]))
        .build()
        .expect("a client");
    round_trip(&client).await;
    let target = format!("CONNECT {}", server.local_addr());
    let line = proxy.wait_for_line(is_connect);
    assert!(line.contains(&target), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_is_forwarded_in_absolute_form() {
    let Some(proxy) = Tinyproxy::start(None) else {
        return;
    };
    let server = start_server().await;
    let client = client_for(&server)
        .proxies(proxies(&[("HTTP_PROXY", proxy.url(None))]))
        .build()
        .expect("a client");
    round_trip(&client).await;
    let target = format!("POST {}/vault/v1/keys/data-key", server.url());
    let line = proxy.wait_for_line(|line| line.contains("): POST "));
    assert!(line.contains(&target), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_proxy_url_authenticate_and_their_absence_is_a_clear_error() {
    let Some(proxy) = Tinyproxy::start(Some(CREDENTIALS)) else {
        return;
    };
    let (server, ca) = https_server().await;
    let with = |url: String| {
        builder(&server, &ca)
            .proxies(proxies(&[("HTTPS_PROXY", url)]))
            .build()
            .expect("a client")
    };
    round_trip(&with(proxy.url(Some(CREDENTIALS)))).await;
    for url in [proxy.url(None), proxy.url(Some(("vault", "wrong")))] {
        let error = with(url)
            .create_data_key(&context("org_proxy"))
            .await
            .expect_err("the proxy must refuse");
        assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
        assert!(!error.is_retryable(), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("the proxy refused the credentials"), "{text}");
        // tinyproxy answers 401 without credentials, 407 with wrong ones.
        assert!(text.contains("the proxy answered \"HTTP/1.0 40"), "{text}");
        assert!(!error.to_string().contains(CREDENTIALS.1), "{error}");
    }
    assert_eq!(server.faults().requests(vault_api::wire::DATA_KEY_PATH), 1);

    let plain = start_server().await;
    let forward = |url: String| {
        client_for(&plain)
            .proxies(proxies(&[("HTTP_PROXY", url)]))
            .build()
            .expect("a client")
    };
    round_trip(&forward(proxy.url(Some(CREDENTIALS)))).await;
    let error = forward(proxy.url(None))
        .create_data_key(&context("org_proxy"))
        .await
        .expect_err("the proxy must refuse");
    assert_eq!(error.status(), Some(407), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_hosts_go_direct() {
    let Some(proxy) = Tinyproxy::start(None) else {
        return;
    };
    let (server, ca) = https_server().await;
    let port = server.local_addr().port();
    let client = |host: &str| {
        builder(&server, &ca)
            .base_url(format!("https://{host}:{port}"))
            .proxies(proxies(&[
                ("HTTPS_PROXY", proxy.url(None)),
                ("NO_PROXY", "example.com,127.0.0.0/8".to_owned()),
            ]))
            .build()
            .expect("a client")
    };
    round_trip(&client("127.0.0.1")).await;
    round_trip(&client("localhost")).await;
    // The proxy saw the second client first: the first went direct.
    let line = proxy.wait_for_line(is_connect);
    assert!(
        line.contains(&format!("CONNECT localhost:{port}")),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_names_the_proxy_and_its_credentials() {
    let Some(proxy) = Tinyproxy::start(Some(CREDENTIALS)) else {
        return;
    };
    let server = start_server().await;
    let (url, proxy_url) = (server.url(), proxy.url(Some(CREDENTIALS)));
    tokio::task::spawn_blocking(move || {
        rerun_with_env(
            "child_uses_the_environment_proxy",
            &[("http_proxy", &proxy_url), ("WORKOS_VAULT_TEST_URL", &url)],
        );
    })
    .await
    .expect("the child ran");
    let line = proxy.wait_for_line(|line| line.contains("): POST "));
    assert!(line.contains(&server.url()), "{line}");
}

#[tokio::test]
#[ignore = "run by the_environment_names_the_proxy_and_its_credentials, with http_proxy set"]
async fn child_uses_the_environment_proxy() {
    let url = std::env::var("WORKOS_VAULT_TEST_URL").expect("WORKOS_VAULT_TEST_URL");
    let client = HttpKeyService::builder()
        .api_key(API_KEY)
        .base_url(url)
        .max_retries(0)
        .build()
        .expect("a client through http_proxy");
    round_trip(&client).await;
}
