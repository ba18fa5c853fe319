//! `vault-bench-net e2e|load|cache|transit-cache`: measurements over HTTP on loopback.
//!
//! - `e2e` reads `{"base_url", "api_key", "count", "concurrency", "size"}`
//!   on stdin (optional `"warmup"`, default 50 pairs), runs `count`
//!   encrypt+decrypt pairs through `vault::Vault` over `HttpKeyService`
//!   with `concurrency` in flight and prints
//!   `{"pairs", "seconds", "cpu_seconds"}`: the same protocol as the SDK
//!   drivers in `tests/compat/bench/`. `cpu_seconds` is this process's CPU
//!   time (user + system) over the timed pairs; run the server in another
//!   process so it is the client's alone.
//! - `load` reads `{"base_url", "api_key", "path", "concurrency",
//!   "requests"}` (`path`: `data-key` or `decrypt`) and sends `requests`
//!   POSTs from `concurrency` keep-alive HTTP/1 connections, one request in
//!   flight on each; it prints `{"requests", "seconds", "p50_us",
//!   "p99_us"}`.
//! - `cache [--quick]` starts a server in this process over a local key
//!   service, seals 10,000 ciphertexts (2,000 with `--quick`) under 10 data
//!   keys and decrypts them all with and without `CachingKeyService`, one
//!   at a time and 32 in flight, counting the decrypt requests the server
//!   saw; it prints `Measurement`s.
//! - `transit-cache [--quick]` does the same over Transit: it reads
//!   `{"address", "token", "key"}` (a Transit engine and a derived key) on
//!   stdin, and its server wraps keys there.
//! - `slowloris` reads a [`vault_bench::slowloris::Request`], holds idle
//!   and slow connections against the server while timing `/health`
//!   probes, and prints the [`vault_bench::slowloris::Outcome`].
//! - `tls-files DIR` writes `ca.pem`, and `cert.pem` and `key.pem` for
//!   127.0.0.1 signed by that CA, into `DIR`.

use std::io::Read;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cpu_time::ProcessTime;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use vault::{CacheConfig, HttpKeyService, KeyContext, KeyService, LocalKeyService, Vault};
use vault_api::wire;
use vault_bench::{median, payload, percentile, Measurement, AAD, CONTEXT};
use vault_crypto::Layout;
use vault_server::{Faults, Server, ServerConfig};

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let result = match args.first().map(String::as_str) {
        Some("e2e") => read_request().and_then(e2e),
        Some("load") => read_request().and_then(load),
        Some("cache") => cache(quick),
        Some("transit-cache") => read_request().and_then(|r| transit_cache(r, quick)),
        Some("slowloris") => read_request().and_then(slowloris),
        Some("tls-files") => tls_files(args.get(1)),
        _ => {
            eprintln!(
                "usage: vault-bench-net e2e|load|transit-cache|slowloris (request on stdin) | cache [--quick] | tls-files DIR"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vault-bench-net: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read_request<T: for<'de> Deserialize<'de>>() -> Result<T, Failure> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    Ok(serde_json::from_str(&text)?)
}

/// Writes a CA and a certificate for 127.0.0.1 into `dir`.
fn tls_files(dir: Option<&String>) -> Result<String, Failure> {
    let dir = std::path::Path::new(dir.ok_or("tls-files needs a directory")?);
    let pki = vault_bench::LoopbackPki::new()?;
    std::fs::write(dir.join("ca.pem"), &pki.ca_pem)?;
    std::fs::write(dir.join("cert.pem"), &pki.cert_pem)?;
    std::fs::write(dir.join("key.pem"), &pki.key_pem)?;
    Ok(format!("\"{}\"", dir.display()))
}

/// The slow-loris measurement, on two worker threads.
fn slowloris(request: vault_bench::slowloris::Request) -> Result<String, Failure> {
    let outcome = runtime(2)?.block_on(vault_bench::slowloris::run(request))?;
    Ok(serde_json::to_string(&outcome)?)
}

/// A runtime of `threads` workers (1: the current thread only).
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, Failure> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    Ok(builder.enable_all().build()?)
}

/// The indices one task of [`run_concurrent`] works through.
type Indices = std::iter::StepBy<std::ops::Range<usize>>;

/// Works through `0..count` with `concurrency` tasks in flight. Task `t`
/// gets the indices `t, t + concurrency, ...` (no counter shared between
/// tasks) and runs the future `make_task` builds for them, which clones
/// shared state once per task rather than per item. Stops at the first
/// error.
async fn run_concurrent<M, Fut>(
    count: usize,
    concurrency: usize,
    make_task: M,
) -> Result<(), Failure>
where
    M: Fn(Indices) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>> + Send + 'static,
{
    let tasks_count = concurrency.clamp(1, count.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for first in 0..tasks_count {
        tasks.spawn(make_task((first..count).step_by(tasks_count)));
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok(())
}

#[derive(Deserialize)]
struct E2eRequest {
    base_url: String,
    api_key: String,
    count: usize,
    concurrency: usize,
    size: usize,
    #[serde(default = "default_warmup")]
    warmup: usize,
    /// Runtime worker threads; 1 (the default) runs on the main thread.
    #[serde(default = "one")]
    threads: usize,
}

fn default_warmup() -> usize {
    50
}

fn one() -> usize {
    1
}

fn e2e(request: E2eRequest) -> Result<String, Failure> {
    let runtime = runtime(request.threads)?;
    runtime.block_on(async move {
        let service = HttpKeyService::builder()
            .api_key(request.api_key.as_str())
            .base_url(request.base_url.as_str())
            .build()?;
        let vault = Arc::new(Vault::new(service));
        let context = Arc::new(KeyContext::new().with(CONTEXT.0, CONTEXT.1)?);
        let plaintext: Arc<str> = payload(request.size).into();
        let make_task = |indices: Indices| {
            let vault = vault.clone();
            let context = context.clone();
            let plaintext = plaintext.clone();
            async move {
                let aad = AAD.as_bytes();
                for _ in indices {
                    let ciphertext = vault
                        .encrypt_with(
                            &*plaintext,
                            &context,
                            &vault::EncryptOptions::new().aad(aad),
                        )
                        .await?;
                    let opened = vault
                        .decrypt_to_string(&ciphertext, &vault::DecryptOptions::new().aad(aad))
                        .await?;
                    if opened != *plaintext {
                        return Err("a pair did not round-trip".into());
                    }
                }
                Ok(())
            }
        };
        run_concurrent(request.warmup, request.concurrency, make_task).await?;
        let cpu = ProcessTime::try_now()?;
        let start = Instant::now();
        run_concurrent(request.count, request.concurrency, make_task).await?;
        let seconds = start.elapsed().as_secs_f64();
        let cpu_seconds = cpu.try_elapsed()?.as_secs_f64();
        Ok(
            json!({"pairs": request.count, "seconds": seconds, "cpu_seconds": cpu_seconds})
                .to_string(),
        )
    })
}

#[derive(Deserialize)]
struct LoadRequest {
    base_url: String,
    api_key: String,
    path: String,
    concurrency: usize,
    requests: usize,
    #[serde(default = "one")]
    threads: usize,
}

fn load(request: LoadRequest) -> Result<String, Failure> {
    let runtime = runtime(request.threads)?;
    runtime.block_on(async move {
        let uri: hyper::Uri = request.base_url.parse()?;
        let authority = uri.authority().ok_or("base_url has no host")?.clone();
        let mut authorization = HeaderValue::try_from(format!("Bearer {}", request.api_key))?;
        authorization.set_sensitive(true);
        let context = json!({"context": {CONTEXT.0: CONTEXT.1}}).to_string();
        // The objects API: create (201, a fresh name per request) or read
        // (one object, over and over), through workos-vault serve's store.
        let run_tag = std::process::id();
        let object_id = match request.path.as_str() {
            "object-read" => {
                let service = HttpKeyService::builder()
                    .api_key(request.api_key.as_str())
                    .base_url(request.base_url.as_str())
                    .build()?;
                let name = vault_api::object::ObjectName::new(format!("bench read {run_tag}"))?;
                let context = KeyContext::new().with(CONTEXT.0, CONTEXT.1)?;
                let create =
                    vault_api::object::CreateObjectRequest::new(name, payload(100), context);
                Some(
                    vault_api::ObjectService::create_object(&service, &create)
                        .await?
                        .id,
                )
            }
            _ => None,
        };
        let (path, body) = match request.path.as_str() {
            "object-create" => (vault_api::object::OBJECTS_PATH, Bytes::new()),
            "object-read" => (vault_api::object::OBJECTS_PATH, Bytes::new()),
            "data-key" => (wire::DATA_KEY_PATH, Bytes::from(context)),
            "decrypt" => {
                // One data key's blob, decrypted over and over.
                let service = HttpKeyService::builder()
                    .api_key(request.api_key.as_str())
                    .base_url(request.base_url.as_str())
                    .build()?;
                let pair = service
                    .create_data_key(&KeyContext::new().with(CONTEXT.0, CONTEXT.1)?)
                    .await?;
                let body = json!({"keys": pair.encrypted_keys_base64()}).to_string();
                (wire::DECRYPT_PATH, Bytes::from(body))
            }
            other => {
                return Err(format!(
                    "path must be data-key, decrypt, object-create or object-read, not {other:?}"
                )
                .into())
            }
        };
        let kind: Arc<str> = request.path.as_str().into();
        let read_path: Option<Arc<str>> = object_id.map(|id| format!("{path}/{id}").into());
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        let connections = request.concurrency.clamp(1, request.requests.max(1));
        // Connect everyone first, so the clock times requests only.
        let mut senders = Vec::with_capacity(connections);
        for _ in 0..connections {
            let stream = tokio::net::TcpStream::connect(authority.as_str()).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                    .await?;
            tokio::spawn(connection);
            senders.push(sender);
        }
        let start = Instant::now();
        for mut sender in senders {
            let next = next.clone();
            let body = body.clone();
            let authority = authority.clone();
            let authorization = authorization.clone();
            let total = request.requests;
            let (kind, read_path) = (kind.clone(), read_path.clone());
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= total {
                        break;
                    }
                    let (method, uri, body, expected) = match (&*kind, &read_path) {
                        ("object-create", _) => {
                            let body = json!({
                                "name": format!("bench {run_tag} {index}"),
                                "value": payload(100),
                                "key_context": {CONTEXT.0: CONTEXT.1},
                            });
                            let body = Bytes::from(body.to_string());
                            (Method::POST, path.to_owned(), body, StatusCode::CREATED)
                        }
                        (_, Some(read)) => {
                            (Method::GET, read.to_string(), Bytes::new(), StatusCode::OK)
                        }
                        _ => (Method::POST, path.to_owned(), body.clone(), StatusCode::OK),
                    };
                    let mut builder = Request::builder()
                        .method(method)
                        .uri(uri)
                        .header(header::HOST, authority.as_str())
                        .header(header::AUTHORIZATION, authorization.clone());
                    if !body.is_empty() {
                        builder = builder.header(header::CONTENT_TYPE, "application/json");
                    }
                    let request = builder.body(Full::new(body))?;
                    let sent = Instant::now();
                    sender.ready().await?;
                    let response = sender.send_request(request).await?;
                    let status = response.status();
                    let answer = response.into_body().collect().await?.to_bytes();
                    latencies.push(sent.elapsed().as_nanos() as u64);
                    if status != expected || answer.is_empty() {
                        return Err(Failure::from(format!("the server answered {status}")));
                    }
                }
                Ok(latencies)
            });
        }
        let mut latencies = Vec::with_capacity(request.requests);
        while let Some(joined) = tasks.join_next().await {
            latencies.extend(joined??);
        }
        let seconds = start.elapsed().as_secs_f64();
        latencies.sort_unstable();
        Ok(json!({
            "requests": latencies.len(),
            "seconds": seconds,
            "p50_us": percentile(&latencies, 50.0) as f64 / 1e3,
            "p99_us": percentile(&latencies, 99.0) as f64 / 1e3,
        })
        .to_string())
    })
}

/// Decrypts every ciphertext with `concurrency` in flight; returns ops/s
/// and the decrypt requests the server counted.
async fn decrypt_all(
    vault: Vault,
    ciphertexts: Arc<Vec<String>>,
    concurrency: usize,
    faults: &Faults,
) -> Result<(f64, usize), Failure> {
    faults.reset_counters();
    let count = ciphertexts.len();
    let start = Instant::now();
    run_concurrent(count, concurrency, |indices| {
        let vault = vault.clone();
        let ciphertexts = ciphertexts.clone();
        async move {
            for i in indices {
                vault
                    .decrypt_with(
                        &ciphertexts[i],
                        &vault::DecryptOptions::new().aad(AAD.as_bytes()),
                    )
                    .await?;
            }
            Ok(())
        }
    })
    .await?;
    let seconds = start.elapsed().as_secs_f64();
    Ok((count as f64 / seconds, faults.requests(wire::DECRYPT_PATH)))
}

/// What `transit-cache` reads: the engine's address, a token and a
/// derived key.
#[derive(Deserialize)]
struct TransitRequest {
    address: String,
    token: String,
    key: String,
}

/// [`cache_over`] Transit: the server in this process wraps keys with the
/// engine at `request.address`, so every key-service call it counts is a
/// Transit call.
fn transit_cache(request: TransitRequest, quick: bool) -> Result<String, Failure> {
    let transit = vault::TransitKeyServiceBuilder::new()
        .address(request.address)
        .token(request.token)
        .key(request.key)
        .build()?;
    cache_over(Arc::new(transit), quick, "cache over Transit")
}

fn cache(quick: bool) -> Result<String, Failure> {
    cache_over(Arc::new(LocalKeyService::ephemeral()), quick, "cache")
}

/// The cache's effect on decrypts through a server in this process over
/// `service`; measurement names start with `label`.
fn cache_over(
    service: Arc<dyn KeyService>,
    quick: bool,
    label: &'static str,
) -> Result<String, Failure> {
    const KEYS: usize = 10;
    let (count, repeats) = if quick { (2_000, 1) } else { (10_000, 3) };
    let runtime = runtime(2)?;
    runtime.block_on(async move {
        let faults = Faults::new();
        let api_key = "sk_test_bench_cache_in_process";
        let server = Server::bind(
            "127.0.0.1:0".parse()?,
            service,
            ServerConfig::new().api_key(api_key).faults(faults.clone()),
        )
        .await?;
        let http = HttpKeyService::builder()
            .api_key(api_key)
            .base_url(server.url())
            .build()?;

        // 10 data keys, each sealing a tenth of the ciphertexts.
        let plaintext = payload(1024);
        let mut pairs = Vec::with_capacity(KEYS);
        for k in 0..KEYS {
            let context = KeyContext::new().with(CONTEXT.0, format!("org_bench_{k}"))?;
            pairs.push(http.create_data_key(&context).await?);
        }
        let ciphertexts: Vec<String> = (0..count)
            .map(|i| {
                let pair = &pairs[i % KEYS];
                vault_crypto::seal_to_base64(
                    &pair.data_key,
                    Layout::A12,
                    &pair.encrypted_keys,
                    plaintext.as_bytes(),
                    AAD.as_bytes(),
                )
            })
            .collect::<Result<_, _>>()?;
        let ciphertexts = Arc::new(ciphertexts);

        let mut measurements = Vec::new();
        for concurrency in [1, 32] {
            let (mut uncached_ops, mut cached_ops, mut ratios) = (vec![], vec![], vec![]);
            let (mut uncached_calls, mut cached_calls) = (0, 0);
            for _ in 0..repeats {
                let plain = Vault::new(http.clone());
                let (ops, calls) =
                    decrypt_all(plain, ciphertexts.clone(), concurrency, &faults).await?;
                uncached_ops.push(ops);
                uncached_calls = uncached_calls.max(calls);
                // A fresh cache each time: its first decrypt of each key
                // misses.
                let cached = Vault::builder()
                    .key_service(http.clone())
                    .cache(CacheConfig::default())
                    .build()?;
                let (cached_rate, calls) =
                    decrypt_all(cached, ciphertexts.clone(), concurrency, &faults).await?;
                cached_ops.push(cached_rate);
                cached_calls = cached_calls.max(calls);
                ratios.push(cached_rate / ops);
            }
            let name = format!("{label}: decrypt {count} sharing {KEYS} keys, c={concurrency}");
            measurements.extend([
                Measurement::higher(
                    &format!("{name}, ops/s"),
                    "ops/s",
                    median(&cached_ops),
                    median(&uncached_ops),
                    "no cache",
                )
                .with_ratio(median(&ratios))
                .target(30.0),
                Measurement::lower(
                    &format!("{name}, key-service calls"),
                    "calls",
                    cached_calls as f64,
                    uncached_calls as f64,
                    "no cache",
                ),
                Measurement::lower(
                    &format!("{name}, key-service calls vs budget"),
                    "calls",
                    cached_calls as f64,
                    KEYS as f64,
                    "budget",
                )
                .target(1.0),
            ]);
        }
        server.shutdown().await?;
        Ok(serde_json::to_string_pretty(&measurements)?)
    })
}
