//! vault-server's defences against slow and greedy clients, over raw TCP:
//! the first request and header read timeouts (slow loris), the header
//! size limit and the connection limits, overall and per peer. Waits are
//! on sockets, never on sleeps. A cut-off must come within [`CUT_OFF`],
//! below every default timeout, so a setting that is ignored fails the
//! test; the other timeouts are generous safety nets so a broken defence
//! fails the test instead of hanging it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vault_server::{Faults, Server, ServerConfig};
use vault_tests::{backing_service, API_KEY};

/// Far above every configured timeout here: only a broken server hits it.
const SAFETY_NET: Duration = Duration::from_secs(30);
/// The configured cut-off of the tests that wait for one.
const TIMEOUT: Duration = Duration::from_millis(200);
/// How long a cut-off may take: far above [`TIMEOUT`], below the default
/// first request timeout (5 s) and header read timeout (10 s).
const CUT_OFF: Duration = Duration::from_secs(4);

async fn server(config: ServerConfig) -> Server {
    Server::bind(
        "127.0.0.1:0".parse().expect("an address"),
        backing_service(),
        config.api_key(API_KEY),
    )
    .await
    .expect("bind a test server")
}

/// Reads until the server closes the connection (EOF or a reset) and
/// returns what it sent first; panics unless that happens within
/// [`CUT_OFF`].
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(CUT_OFF, read_all)
        .await
        .expect("the server closes the connection within the cut-off, not a default timeout");
    received
}

/// Reads one HTTP/1.1 response head and returns its status code.
async fn read_status(stream: &mut TcpStream) -> u16 {
    let mut head = Vec::new();
    let read_head = async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.expect("read a response");
            assert_eq!(n, 1, "the connection closed before a response");
            head.push(byte[0]);
        }
    };
    tokio::time::timeout(SAFETY_NET, read_head)
        .await
        .expect("a response");
    let head = String::from_utf8_lossy(&head);
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head}"))
}

/// Reads one whole `Content-Length` response and returns its status.
async fn round_trip(stream: &mut TcpStream, request: &[u8]) -> u16 {
    stream.write_all(request).await.expect("send a request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.expect("read a response");
            assert_eq!(n, 1, "the connection closed before a response");
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let length: usize = text
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a content-length");
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.expect("the body");
        text.split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status")
    };
    tokio::time::timeout(SAFETY_NET, read)
        .await
        .expect("a response")
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n";

/// Cut-offs by the first request timeout, with a long header read
/// timeout, so only the first request timeout can close in time.
fn first_request_cut_off() -> ServerConfig {
    ServerConfig::new()
        .first_request_timeout(TIMEOUT)
        .header_read_timeout(SAFETY_NET)
}

#[tokio::test]
async fn a_partial_request_head_is_cut_off() {
    let server = server(first_request_cut_off()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    stream
        .write_all(b"POST /vault/v1/keys/data-key HTTP/1.1\r\nhost: test\r\nx-slow: ")
        .await
        .expect("send part of a head");
    let received = read_until_closed(&mut stream).await;
    // Closed without an answer: a slow loris learns nothing.
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
}

#[tokio::test]
async fn a_partial_request_head_is_cut_off_by_the_header_read_timeout_too() {
    // The header read timeout alone, shorter than the first request's.
    let server = server(
        ServerConfig::new()
            .header_read_timeout(TIMEOUT)
            .first_request_timeout(SAFETY_NET),
    )
    .await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    stream
        .write_all(b"POST /vault/v1/keys/data-key HTTP/1.1\r\nhost: test\r\nx-slow: ")
        .await
        .expect("send part of a head");
    let received = read_until_closed(&mut stream).await;
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
}

#[tokio::test]
async fn a_silent_connection_is_cut_off() {
    // No byte at all: HTTP version detection waits for the first bytes,
    // and that wait is bounded by the first request timeout too.
    let server = server(first_request_cut_off()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let received = read_until_closed(&mut stream).await;
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
}

#[tokio::test]
async fn a_partial_http2_preface_is_cut_off() {
    let server = server(first_request_cut_off()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    stream
        .write_all(b"PRI * HTTP/2.0\r\n")
        .await
        .expect("send part of the preface");
    // Half a preface is not yet HTTP/2: no SETTINGS, no GOAWAY, nothing,
    // and the connection is closed within the cut-off.
    let received = read_until_closed(&mut stream).await;
    assert!(received.is_empty(), "{received:?}");
}

#[tokio::test]
async fn an_http2_connection_without_a_request_is_cut_off() {
    let server = server(first_request_cut_off()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    // The whole preface and an empty SETTINGS frame, then no request.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .expect("send the preface");
    let received = read_until_closed(&mut stream).await;
    // The server spoke HTTP/2: its first frame is its SETTINGS (type 4 on
    // stream 0), then it closed without a request having come.
    assert!(received.len() >= 9, "{received:?}");
    assert_eq!(received[3], 4, "a SETTINGS frame first: {received:?}");
    assert_eq!(&received[5..9], &[0, 0, 0, 0], "on stream 0: {received:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_cut_off() {
    let server = server(
        ServerConfig::new()
            .header_read_timeout(TIMEOUT)
            .first_request_timeout(SAFETY_NET),
    )
    .await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    assert_eq!(round_trip(&mut stream, HEALTH).await, 200);
    // Then nothing: waiting for the next request head times out as well,
    // and the connection is closed without another answer.
    let received = read_until_closed(&mut stream).await;
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
}

#[tokio::test]
async fn a_slow_but_steady_client_is_still_served() {
    // The timeout bounds the whole head, not each read: a client that
    // trickles its head in small writes and finishes in time is answered.
    let server = server(ServerConfig::new().header_read_timeout(Duration::from_secs(20))).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    for chunk in HEALTH.chunks(5) {
        stream.write_all(chunk).await.expect("send a chunk");
        stream.flush().await.expect("flush");
    }
    assert_eq!(read_status(&mut stream).await, 200);
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let server = server(ServerConfig::new().max_header_bytes(16 << 10)).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let filler = "a".repeat(20 << 10);
    let request = format!("GET /health HTTP/1.1\r\nhost: test\r\nx-filler: {filler}\r\n\r\n");
    // The server may stop reading once it has seen enough: ignore a failed
    // write, read the answer.
    let _ = stream.write_all(request.as_bytes()).await;
    assert_eq!(read_status(&mut stream).await, 431);

    // Headers under the limit are fine.
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let filler = "a".repeat(8 << 10);
    let request = format!("GET /health HTTP/1.1\r\nhost: test\r\nx-filler: {filler}\r\n\r\n");
    assert_eq!(round_trip(&mut stream, request.as_bytes()).await, 200);
}

#[tokio::test]
async fn connections_over_the_limit_wait_for_a_free_slot() {
    let faults = Faults::new();
    let server = server(
        ServerConfig::new()
            .max_connections(1)
            .header_read_timeout(Duration::from_secs(60))
            .faults(faults.clone()),
    )
    .await;
    let mut first = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    assert_eq!(round_trip(&mut first, HEALTH).await, 200);

    // The kernel completes the second handshake, but the server does not
    // serve it while the first connection holds the only slot.
    let mut second = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    second.write_all(HEALTH).await.expect("send");
    for _ in 0..3 {
        assert_eq!(round_trip(&mut first, HEALTH).await, 200);
    }
    assert_eq!(faults.requests("/health"), 4, "only the first connection's");
    let mut buf = [0u8; 1];
    assert!(
        matches!(second.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the second connection got an answer while the first held the slot"
    );

    // Closing the first frees the slot: the second is served.
    drop(first);
    assert_eq!(read_status(&mut second).await, 200);
    assert_eq!(faults.requests("/health"), 5);
}

/// A connection to `server` from `source`, one of loopback's many
/// addresses, so one test can be several peers.
async fn connect_from(server: &Server, source: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(format!("{source}:0").parse().expect("an address"))
        .expect("bind the source address");
    socket.connect(server.local_addr()).await.expect("connect")
}

#[tokio::test]
async fn a_peer_over_its_connection_limit_is_refused_while_others_are_served() {
    let server = server(
        ServerConfig::new()
            .max_connections_per_peer(2)
            .first_request_timeout(SAFETY_NET)
            .header_read_timeout(SAFETY_NET),
    )
    .await;
    // Two idle connections: the greedy peer's whole share.
    let _held = [
        connect_from(&server, "127.0.0.2").await,
        connect_from(&server, "127.0.0.2").await,
    ];
    // Its third is closed as soon as it is accepted, unanswered.
    let mut third = connect_from(&server, "127.0.0.2").await;
    let _ = third.write_all(HEALTH).await;
    let received = read_until_closed(&mut third).await;
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    // Another peer is served.
    let mut other = connect_from(&server, "127.0.0.3").await;
    assert_eq!(round_trip(&mut other, HEALTH).await, 200);
    let text = server.metrics().render();
    assert!(
        text.lines()
            .any(|line| line == r#"vault_server_connections_refused_total{reason="per_peer"} 1"#),
        "{text}"
    );
}
