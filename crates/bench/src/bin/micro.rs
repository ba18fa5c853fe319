//! `vault-bench-micro aead|local [--quick]`: in-process measurements,
//! printed as a JSON array of `Measurement`s.
//!
//! - `aead`: seal and open throughput of our A12 envelopes against raw
//!   ring, at 64 B, 1 KiB, 16 KiB and 1 MiB. Rounds alternate ours and
//!   ring; the medians of the throughputs and of the per-round ratios are
//!   reported.
//! - `local`: the steps of decrypting a ciphertext locally (base64 decode,
//!   parse, open, to string) and the facade's whole `decrypt_to_string`
//!   over a key service that answers at once, at 64 B and 1 KiB, in ns/op
//!   and allocations/op (counted by this binary's global allocator).

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use vault::{CacheConfig, Vault};
use vault_api::{DataKeyPair, Error, ErrorKind, KeyContext, KeyService};
use vault_bench::{median, payload, Measurement, AAD};
use vault_crypto::{open_into, seal_into, DataKey, Envelope, Layout};
use vault_format::b64;

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const KEY_ID: &str = "0237abe8-fc0d-4456-831c-3a2d133e9f90";

/// How long to spend per measurement.
#[derive(Clone, Copy)]
struct Budget {
    /// Length of one timed round.
    round: Duration,
    /// Rounds per measurement (odd, for a clean median).
    rounds: usize,
}

impl Budget {
    fn new(quick: bool) -> Self {
        // Many short rounds: ours and ring run close together in time, so
        // interference from other jobs on the machine tends to hit both,
        // and the median ratio discards the rounds where it did not.
        if quick {
            Budget {
                round: Duration::from_millis(10),
                rounds: 5,
            }
        } else {
            Budget {
                round: Duration::from_millis(8),
                rounds: 61,
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let budget = Budget::new(quick);
    let measurements = match args.first().map(String::as_str) {
        Some("aead") => aead(budget),
        Some("local") => local(budget),
        _ => {
            eprintln!("usage: vault-bench-micro aead|local [--quick]");
            return ExitCode::from(2);
        }
    };
    match serde_json::to_string_pretty(&measurements) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vault-bench-micro: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How many calls of `f` fill about `round`.
fn calibrate(f: &mut dyn FnMut(), round: Duration) -> u64 {
    let mut iters = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        let elapsed = start.elapsed();
        if elapsed >= round / 8 || iters >= 1 << 30 {
            let per_iter = elapsed.as_secs_f64() / iters as f64;
            return ((round.as_secs_f64() / per_iter) as u64).max(1);
        }
        iters *= 2;
    }
}

/// Seconds per call of `f`, over `iters` calls.
fn time(f: &mut dyn FnMut(), iters: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() / iters as f64
}

/// Times `ours` and `theirs` in alternating rounds. Returns the median
/// seconds per call of each and the median per-round ratio
/// theirs/ours (how many times faster ours is).
fn compare(ours: &mut dyn FnMut(), theirs: &mut dyn FnMut(), budget: Budget) -> (f64, f64, f64) {
    let ours_iters = calibrate(ours, budget.round);
    let theirs_iters = calibrate(theirs, budget.round);
    let mut ours_times = Vec::new();
    let mut theirs_times = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..budget.rounds {
        // Alternate which goes first, so drift favours neither.
        let (a, b) = if round % 2 == 0 {
            let a = time(ours, ours_iters);
            (a, time(theirs, theirs_iters))
        } else {
            let b = time(theirs, theirs_iters);
            (time(ours, ours_iters), b)
        };
        ours_times.push(a);
        theirs_times.push(b);
        ratios.push(b / a);
    }
    (median(&ours_times), median(&theirs_times), median(&ratios))
}

/// Median seconds per call of `f`.
fn measure(f: &mut dyn FnMut(), budget: Budget) -> f64 {
    let iters = calibrate(f, budget.round);
    let times: Vec<f64> = (0..budget.rounds).map(|_| time(f, iters)).collect();
    median(&times)
}

/// Allocations (fresh and reallocations) per call of `f`.
fn allocations(f: &mut dyn FnMut()) -> f64 {
    const CALLS: u64 = 1000;
    f();
    let region = Region::new(GLOBAL);
    for _ in 0..CALLS {
        f();
    }
    let stats = region.change();
    (stats.allocations + stats.reallocations) as f64 / CALLS as f64
}

fn size_name(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{}MiB", s >> 20),
        s if s >= 1 << 10 => format!("{}KiB", s >> 10),
        s => format!("{s}B"),
    }
}

/// A WorkOS-shaped keys blob of realistic length (207 bytes).
fn blob() -> Vec<u8> {
    let mut blob = vault_format::__private::WORKOS_MAGIC.to_vec();
    blob.extend_from_slice(KEY_ID.as_bytes());
    blob.extend_from_slice(&[0x5a; 160]);
    blob
}

fn aead(budget: Budget) -> Vec<Measurement> {
    let key = DataKey::new(KEY_ID, [0x42; 32]);
    let ring =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.secret_bytes()).expect("a 32-byte key"));
    let rng = SystemRandom::new();
    let blob = blob();
    let aad = AAD.as_bytes();
    let mut out = Vec::new();
    for size in [64, 1024, 16 << 10, 1 << 20] {
        let target = (size >= 16 << 10).then_some(0.95);
        let plaintext = vec![0xa5u8; size];
        let mib = size as f64 / f64::from(1 << 20);

        // Seal: both draw a random nonce per message and reuse their
        // output buffer; ours also frames the envelope around it.
        let mut ours_buf = Vec::with_capacity(size + 512);
        let mut ring_buf = Vec::with_capacity(size + 16);
        let (ours, theirs, ratio) = compare(
            &mut || {
                ours_buf.clear();
                seal_into(&mut ours_buf, &key, Layout::A12, &blob, &plaintext, aad).expect("seals");
                black_box(&ours_buf);
            },
            &mut || {
                let mut nonce = [0u8; 12];
                rng.fill(&mut nonce).expect("random nonce");
                ring_buf.clear();
                ring_buf.extend_from_slice(&plaintext);
                let tag = ring
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        &mut ring_buf,
                    )
                    .expect("seals");
                black_box((&ring_buf, tag.as_ref()));
            },
            budget,
        );
        let mut m = Measurement::higher(
            &format!("aead seal {}", size_name(size)),
            "MiB/s",
            mib / ours,
            mib / theirs,
            "ring, raw",
        )
        .with_ratio(ratio);
        m.target = target;
        out.push(m);

        // Open: both copy the ciphertext into a reused buffer and decrypt
        // it there.
        let sealed = vault_crypto::seal(&key, Layout::A12, &blob, &plaintext, aad).expect("seals");
        let envelope = Envelope::parse(&sealed).expect("parses");
        let mut ct_tag = envelope.ciphertext().to_vec();
        ct_tag.extend_from_slice(envelope.tag());
        let nonce: [u8; 12] = envelope.iv().try_into().expect("a 12-byte IV");
        let mut ours_buf = Vec::with_capacity(size);
        let mut ring_buf = Vec::with_capacity(size + 16);
        let (ours, theirs, ratio) = compare(
            &mut || {
                ours_buf.clear();
                open_into(&mut ours_buf, &key, &envelope, aad).expect("opens");
                black_box(&ours_buf);
            },
            &mut || {
                ring_buf.clear();
                ring_buf.extend_from_slice(&ct_tag);
                let plaintext = ring
                    .open_in_place(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        &mut ring_buf,
                    )
                    .expect("opens");
                black_box(plaintext);
            },
            budget,
        );
        let mut m = Measurement::higher(
            &format!("aead open {}", size_name(size)),
            "MiB/s",
            mib / ours,
            mib / theirs,
            "ring, raw",
        )
        .with_ratio(ratio);
        m.target = target;
        out.push(m);
    }
    out
}

/// A named step of the local path, as a closure to time.
type Step<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// A key service that answers at once with one data key: what is left of
/// a decrypt when the key service costs nothing.
#[derive(Debug)]
struct FixedKey(DataKey);

#[async_trait]
impl KeyService for FixedKey {
    async fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        Ok(DataKeyPair::new(
            context.clone(),
            self.0.duplicate(),
            blob(),
        ))
    }

    async fn decrypt_data_key(&self, _encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        Ok(self.0.duplicate())
    }

    async fn rekey(&self, _keys: &[u8], _context: &KeyContext) -> Result<DataKeyPair, Error> {
        Err(Error::new(ErrorKind::Api, "not used by the benchmark"))
    }
}

/// Polls a future that must finish without waiting (the key services here
/// never wait), without a runtime.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a benchmarked future waited"),
    }
}

/// How `Vault::decrypt_to_string` worked before it decrypted in place:
/// decode, parse, the key service called through its `Arc` (whose blanket
/// `KeyService` impl boxes a second future), then a copying `open` into a
/// second buffer.
fn decrypt_before(service: &Arc<dyn KeyService>, text: &str, aad: &[u8]) -> String {
    let mut buf = Vec::new();
    b64::decode_into(text, &mut buf).expect("base64");
    let envelope = Envelope::parse(&buf).expect("parses");
    let keys = envelope.encrypted_keys().expect("keys");
    let key = ready(service.decrypt_data_key(&keys)).expect("a key");
    let plaintext = vault_crypto::open(&key, &envelope, aad).expect("opens");
    String::from_utf8(plaintext).expect("UTF-8")
}

fn local(budget: Budget) -> Vec<Measurement> {
    let key = DataKey::new(KEY_ID, [0x42; 32]);
    let blob = blob();
    let aad = AAD.as_bytes();
    let fixed = Vault::new(FixedKey(key.duplicate()));
    let cached = Vault::builder()
        .key_service(FixedKey(key.duplicate()))
        .cache(CacheConfig::default())
        .build()
        .expect("a vault");
    let service = fixed.key_service().clone();
    let mut out = Vec::new();
    for size in [64, 1024] {
        let name = size_name(size);
        let plaintext = payload(size);
        let text =
            vault_crypto::seal_to_base64(&key, Layout::A12, &blob, plaintext.as_bytes(), aad)
                .expect("seals");
        let bytes = b64::decode(&text).expect("base64");
        let envelope = Envelope::parse(&bytes).expect("parses");
        let opened = vault_crypto::open(&key, &envelope, aad).expect("opens");
        // Warm the cache, and check every path gets the plaintext back.
        assert_eq!(
            ready(cached.decrypt_to_string(&text, &vault::DecryptOptions::new().aad(aad)))
                .expect("decrypts"),
            plaintext
        );
        assert_eq!(
            ready(fixed.decrypt_to_string(&text, &vault::DecryptOptions::new().aad(aad)))
                .expect("decrypts"),
            plaintext
        );
        assert_eq!(decrypt_before(&service, &text, aad), plaintext);

        let mut steps: Vec<Step<'_>> = vec![
            (
                "base64 decode",
                Box::new(|| {
                    black_box(b64::decode(black_box(&text)).expect("base64"));
                }),
            ),
            (
                "parse",
                Box::new(|| {
                    black_box(Envelope::parse(black_box(&bytes)).expect("parses"));
                }),
            ),
            (
                "open",
                Box::new(|| {
                    black_box(vault_crypto::open(&key, black_box(&envelope), aad).expect("opens"));
                }),
            ),
            ("to string", {
                let mut buf = Some(opened.clone());
                Box::new(move || {
                    let bytes = buf.take().unwrap_or_default();
                    let text = String::from_utf8(black_box(bytes)).expect("UTF-8");
                    buf = Some(black_box(text).into_bytes());
                })
            }),
        ];
        for (step, f) in &mut steps {
            let seconds = measure(f.as_mut(), budget);
            out.push(Measurement::report(
                &format!("local {name} {step}"),
                "ns/op",
                seconds * 1e9,
            ));
            out.push(Measurement::report(
                &format!("local {name} {step}"),
                "allocs/op",
                allocations(f.as_mut()),
            ));
        }
        drop(steps);

        // The whole decrypt: the facade against how it used to decrypt,
        // same key service, same run.
        let mut facade =
            || {
                black_box(
                    ready(fixed.decrypt_to_string(
                        black_box(&text),
                        &vault::DecryptOptions::new().aad(aad),
                    ))
                    .expect("ok"),
                );
            };
        let mut before = || {
            black_box(decrypt_before(&service, black_box(&text), aad));
        };
        let (ours, theirs, ratio) = compare(&mut facade, &mut before, budget);
        out.push(
            Measurement::lower(
                &format!("local {name} decrypt_to_string (facade)"),
                "ns/op",
                ours * 1e9,
                theirs * 1e9,
                "facade before (copying open)",
            )
            .with_ratio(ratio),
        );
        let facade_allocs = allocations(&mut facade);
        let before_allocs = allocations(&mut before);
        out.push(Measurement::lower(
            &format!("local {name} decrypt_to_string (facade)"),
            "allocs/op",
            facade_allocs,
            before_allocs,
            "facade before (copying open)",
        ));
        // The budget: at most 2 allocations besides the returned plaintext
        // (the decoded buffer that becomes it).
        out.push(
            Measurement::lower(
                &format!("local {name} decrypt allocs excl. plaintext"),
                "allocs/op",
                facade_allocs - 1.0,
                2.0,
                "budget",
            )
            .target(1.0),
        );

        let mut warm =
            || {
                black_box(
                    ready(cached.decrypt_to_string(
                        black_box(&text),
                        &vault::DecryptOptions::new().aad(aad),
                    ))
                    .expect("ok"),
                );
            };
        let seconds = measure(&mut warm, budget);
        out.push(Measurement::report(
            &format!("local {name} decrypt_to_string (warm cache)"),
            "ns/op",
            seconds * 1e9,
        ));
        out.push(Measurement::report(
            &format!("local {name} decrypt_to_string (warm cache)"),
            "allocs/op",
            allocations(&mut warm),
        ));
    }
    out
}
