//! [`Proxies`]: which requests go through an HTTP proxy, read from
//! `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` as curl reads
//! them; and the connector that reaches a server through one (a `CONNECT`
//! tunnel for `https://`, the absolute-form request for `http://`).

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::header::HeaderValue;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use super::config_error;
use crate::Error;

/// The variables read, each upper case first, then lower case. Under CGI
/// (`REQUEST_METHOD` set) `HTTP_PROXY` is ignored: a request's `Proxy`
/// header can set it.
const VARIABLES: [(&str, &str); 4] = [
    ("HTTPS_PROXY", "https_proxy"),
    ("HTTP_PROXY", "http_proxy"),
    ("ALL_PROXY", "all_proxy"),
    ("NO_PROXY", "no_proxy"),
];

/// Which requests of an [`HttpKeyService`](crate::HttpKeyService) go
/// through which HTTP proxy.
///
/// [`from_env`](Self::from_env) reads the variables curl and reqwest read:
/// `HTTPS_PROXY` for `https://` URLs (tunnelled with `CONNECT`),
/// `HTTP_PROXY` for `http://` ones (sent to the proxy in absolute form),
/// `ALL_PROXY` for either when its own is unset, and `NO_PROXY`, a comma
/// list of hosts, domains (`example.com` also matches its subdomains),
/// IP addresses or CIDR ranges that go direct, or `*` for all. A proxy URL
/// is `http://[user:password@]host:port` (no scheme means `http://`); the
/// credentials, percent-decoded, are sent as `Proxy-Authorization: Basic`.
///
/// ```
/// use vault_api::transport::Proxies;
///
/// let proxies = Proxies::from_lookup(|name| match name {
///     "HTTPS_PROXY" => Some("http://user:secret@proxy.internal:3128".to_owned()),
///     "NO_PROXY" => Some("localhost,.corp.example".to_owned()),
///     _ => None,
/// })?;
/// assert!(!format!("{proxies:?}").contains("secret"));
/// # Ok::<(), vault_api::Error>(())
/// ```
#[derive(Clone)]
pub struct Proxies {
    matcher: Arc<Matcher>,
    /// The proxies' addresses without credentials, for `Debug`.
    shown: Vec<String>,
}

impl Proxies {
    /// No proxy: every request goes direct.
    pub fn none() -> Self {
        Proxies {
            matcher: Arc::new(Matcher::builder().build()),
            shown: Vec::new(),
        }
    }

    /// The proxies the process environment names. Fails with
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when a variable is
    /// set to something that is not an `http://` proxy URL, rather than
    /// sending around it.
    pub fn from_env() -> Result<Self, Error> {
        if std::env::var_os("REQUEST_METHOD").is_some() {
            // CGI: HTTP_PROXY may come from a request's `Proxy` header.
            return Self::from_lookup(|name| {
                (!name.eq_ignore_ascii_case("http_proxy"))
                    .then(|| std::env::var(name).ok())
                    .flatten()
            });
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over `lookup` instead of the process
    /// environment: for tests, or settings kept elsewhere.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let read = |(upper, lower): (&str, &str)| {
            lookup(upper)
                .or_else(|| lookup(lower))
                .filter(|value| !value.trim().is_empty())
        };
        let [https, http, all, no] = VARIABLES.map(read);
        let mut shown = Vec::new();
        for (name, value) in [
            ("HTTPS_PROXY", &https),
            ("HTTP_PROXY", &http),
            ("ALL_PROXY", &all),
        ] {
            if let Some(value) = value {
                shown.push(format!("{name}={}", check_proxy_url(name, value)?));
            }
        }
        let matcher = Matcher::builder()
            .https(https.unwrap_or_default())
            .http(http.unwrap_or_default())
            .all(all.unwrap_or_default())
            .no(no.clone().unwrap_or_default())
            .build();
        if let Some(no) = no {
            shown.push(format!("NO_PROXY={no}"));
        }
        Ok(Proxies {
            matcher: Arc::new(matcher),
            shown,
        })
    }

    /// The proxy for `uri`, if it goes through one.
    pub(super) fn intercept(&self, uri: &Uri) -> Option<Intercept> {
        self.matcher.intercept(uri)
    }
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Proxies").field(&self.shown).finish()
    }
}

/// The proxy URL without its credentials, or why it cannot be used.
fn check_proxy_url(name: &str, value: &str) -> Result<String, Error> {
    let value = value.trim();
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|_| config_error(&format!("{name} is not a valid proxy URL")))?;
    if !uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http"))
    {
        return Err(config_error(&format!(
            "{name} must be an http:// proxy URL (https:// and SOCKS proxies are not supported)"
        )));
    }
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() {
        return Err(config_error(&format!("{name} has no proxy host")));
    }
    Ok(format!("http://{host}"))
}

/// Connects to a server directly or through its proxy.
#[derive(Clone)]
pub(super) struct ProxyConnector {
    pub(super) http: HttpConnector,
    pub(super) proxies: Proxies,
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut http = self.http.clone();
        let proxy = self.proxies.intercept(&dst);
        Box::pin(async move {
            let Some(proxy) = proxy else {
                let io = http.call(dst).await?;
                return Ok(ProxyStream { io, forward: false });
            };
            if dst.scheme() == Some(&hyper::http::uri::Scheme::HTTPS) {
                let io = http.call(proxy.uri().clone()).await?;
                let stream = tunnel(io.into_inner(), &dst, proxy.basic_auth()).await?;
                return Ok(ProxyStream {
                    io: TokioIo::new(stream),
                    forward: false,
                });
            }
            let io = http.call(proxy.uri().clone()).await?;
            Ok(ProxyStream { io, forward: true })
        })
    }
}

/// The longest proxy answer to a `CONNECT` that is read.
const MAX_CONNECT_ANSWER: usize = 8192;

/// Asks the proxy on `stream` for a tunnel to `dst`'s host and port,
/// and reads its answer head: a 2xx opens the tunnel.
async fn tunnel(
    mut stream: TcpStream,
    dst: &Uri,
    auth: Option<&HeaderValue>,
) -> Result<TcpStream, BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let host = dst.host().ok_or("the URL has no host")?;
    let port = dst.port_u16().unwrap_or(443);
    let target = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    if let Some(auth) = auth {
        head.extend_from_slice(b"Proxy-Authorization: ");
        head.extend_from_slice(auth.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    stream.write_all(&head).await?;
    let mut answer = Vec::with_capacity(512);
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        if answer.len() >= MAX_CONNECT_ANSWER {
            return Err("the proxy's answer to CONNECT is too long".into());
        }
        let mut chunk = [0u8; 512];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err("the proxy closed the connection before answering CONNECT".into());
        }
        answer.extend_from_slice(&chunk[..read]);
    }
    let status_line =
        String::from_utf8_lossy(answer.split(|b| *b == b'\r').next().unwrap_or_default())
            .into_owned();
    match status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
    {
        Some(200..=299) => Ok(stream),
        // 407 is the proxy's status; tinyproxy answers CONNECT with 401.
        Some(401 | 407) => Err(Box::new(ProxyAuthRefused(status_line))),
        _ => Err(format!("the proxy refused CONNECT {target}: {status_line:?}").into()),
    }
}

/// The proxy answered a `CONNECT` with 407 (or 401): credentials missing
/// or wrong. Holds its status line.
#[derive(Debug)]
pub(super) struct ProxyAuthRefused(String);

impl fmt::Display for ProxyAuthRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the proxy answered {:?}", self.0)
    }
}

impl StdError for ProxyAuthRefused {}

/// The `Proxy-Authorization` a plain `http://` request to `uri` needs
/// (a tunnel sends its own in the `CONNECT`).
pub(super) fn forward_authorization(proxies: &Proxies, uri: &Uri) -> Option<HeaderValue> {
    if uri.scheme() != Some(&hyper::http::uri::Scheme::HTTP) {
        return None;
    }
    proxies.intercept(uri)?.basic_auth().cloned()
}

/// A connection to a server, or to the proxy that forwards to it.
pub(super) struct ProxyStream {
    io: TokioIo<TcpStream>,
    /// Requests are sent to the proxy in absolute form.
    forward: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forward)
    }
}

impl Read for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(vars: &[(&str, &str)]) -> Result<Proxies, Error> {
        Proxies::from_lookup(|name| {
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    fn proxy_of(proxies: &Proxies, url: &str) -> Option<String> {
        let uri: Uri = url.parse().expect("a URL");
        proxies.intercept(&uri).map(|i| i.uri().to_string())
    }

    #[test]
    fn each_scheme_has_its_variable_and_all_proxy_fills_in() {
        let set =
            proxies(&[("https_proxy", "p1:3128"), ("ALL_PROXY", "http://p2:8080")]).expect("valid");
        assert_eq!(
            proxy_of(&set, "https://api.workos.com/x").as_deref(),
            Some("http://p1:3128/")
        );
        assert_eq!(
            proxy_of(&set, "http://api.workos.com/x").as_deref(),
            Some("http://p2:8080/")
        );
        let upper_first = proxies(&[
            ("HTTPS_PROXY", "http://up:1"),
            ("https_proxy", "http://low:2"),
        ])
        .expect("valid");
        assert_eq!(
            proxy_of(&upper_first, "https://h/").as_deref(),
            Some("http://up:1/")
        );
        assert_eq!(proxy_of(&Proxies::none(), "https://h/"), None);
    }

    #[test]
    fn no_proxy_matches_hosts_domains_and_ranges() {
        let set = proxies(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("NO_PROXY", "localhost, .corp.example,10.0.0.0/8,exact.test"),
        ])
        .expect("valid");
        for direct in [
            "https://localhost:1/",
            "https://a.corp.example/",
            "https://corp.example/",
            "https://10.2.3.4/",
            "https://exact.test/",
            "https://sub.exact.test/",
        ] {
            assert_eq!(proxy_of(&set, direct), None, "{direct}");
        }
        for proxied in [
            "https://api.workos.com/",
            "https://notcorp.example/",
            "https://11.0.0.1/",
        ] {
            assert!(proxy_of(&set, proxied).is_some(), "{proxied}");
        }
        let star =
            proxies(&[("HTTPS_PROXY", "http://proxy:3128"), ("no_proxy", "*")]).expect("valid");
        assert_eq!(proxy_of(&star, "https://api.workos.com/"), None);
    }

    #[test]
    fn credentials_become_basic_auth_and_stay_out_of_debug() {
        let set = proxies(&[
            ("HTTPS_PROXY", "http://us%40er:p%3Ass@proxy:3128"),
            ("HTTP_PROXY", "http://us%40er:p%3Ass@proxy:3128"),
        ])
        .expect("valid");
        let uri: Uri = "https://api.workos.com/".parse().expect("a URL");
        let intercept = set.intercept(&uri).expect("proxied");
        // base64("us@er:p:ss")
        assert_eq!(
            intercept.basic_auth().map(HeaderValue::as_bytes),
            Some(&b"Basic dXNAZXI6cDpzcw=="[..])
        );
        let debug = format!("{set:?}");
        assert!(
            !debug.contains("p%3Ass") && !debug.contains("us%40er"),
            "{debug}"
        );
        assert!(debug.contains("http://proxy:3128"), "{debug}");
        let http: Uri = "http://local:8080/".parse().expect("a URL");
        assert!(forward_authorization(&set, &http).is_some());
        assert!(
            forward_authorization(&set, &uri).is_none(),
            "a tunnel sends its own"
        );
    }

    #[test]
    fn unusable_proxy_urls_are_config_errors() {
        for bad in [
            "socks5://proxy:1080",
            "https://proxy:443",
            "http://",
            "http://exa mple:1",
        ] {
            let error = proxies(&[("HTTPS_PROXY", bad)]).expect_err(bad);
            assert_eq!(error.kind(), crate::ErrorKind::Config, "{bad}");
            assert!(error.to_string().contains("HTTPS_PROXY"), "{bad}: {error}");
        }
        assert!(proxies(&[("HTTPS_PROXY", "  ")]).is_ok(), "blank is unset");
    }
}
