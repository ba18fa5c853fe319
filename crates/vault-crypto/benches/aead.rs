//! Seal and open throughput of the A12 layout against raw ring.
//!
//! Both sides reuse their output buffer and their key across iterations,
//! so this measures crypto and copying, not the allocator or the key
//! schedule (a `DataKey` caches ring's expanded key after first use). Per
//! message both draw a random nonce; ours also frames the envelope (IV,
//! tag, a 207-byte keys blob) around the ciphertext.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use vault_crypto::{open_into, seal_into, DataKey, Envelope, Layout};

const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 1024 * 1024];
const AAD: &[u8] = b"org_01HXYZ:user_42";

/// A WorkOS-shaped keys blob of realistic length (about 200 bytes).
fn blob() -> Vec<u8> {
    let mut blob = b"WOS.EKM.v1\0".to_vec();
    blob.extend_from_slice(b"0237abe8-fc0d-4456-831c-3a2d133e9f90");
    blob.extend_from_slice(&[0x5a; 160]);
    blob
}

fn ring_key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte key"))
}

fn seal(c: &mut Criterion) {
    let key = DataKey::new("0237abe8-fc0d-4456-831c-3a2d133e9f90", [0x42; 32]);
    let ring = ring_key(key.secret_bytes());
    let rng = SystemRandom::new();
    let blob = blob();
    let mut group = c.benchmark_group("seal");
    for size in SIZES {
        let plaintext = vec![0xa5u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("vault_a12", size), &plaintext, |b, pt| {
            let mut out = Vec::with_capacity(size + 512);
            b.iter(|| {
                out.clear();
                seal_into(&mut out, &key, Layout::A12, &blob, pt, AAD).expect("seals");
                black_box(&out);
            });
        });
        group.bench_with_input(BenchmarkId::new("ring", size), &plaintext, |b, pt| {
            let mut out = Vec::with_capacity(size + 512);
            b.iter(|| {
                let mut nonce = [0u8; 12];
                rng.fill(&mut nonce).expect("random nonce");
                out.clear();
                out.extend_from_slice(pt);
                let tag = ring
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(AAD),
                        &mut out,
                    )
                    .expect("seals");
                black_box(&out);
                black_box(tag.as_ref());
            });
        });
    }
    group.finish();
}

fn open(c: &mut Criterion) {
    let key = DataKey::new("0237abe8-fc0d-4456-831c-3a2d133e9f90", [0x42; 32]);
    let ring = ring_key(key.secret_bytes());
    let blob = blob();
    let mut group = c.benchmark_group("open");
    for size in SIZES {
        let plaintext = vec![0xa5u8; size];
        let sealed = vault_crypto::seal(&key, Layout::A12, &blob, &plaintext, AAD).expect("seals");
        let envelope = Envelope::parse(&sealed).expect("parses");
        // The same message as ring sees it: ciphertext then tag.
        let mut ct_tag = envelope.ciphertext().to_vec();
        ct_tag.extend_from_slice(envelope.tag());
        let nonce: [u8; 12] = envelope.iv().try_into().expect("12-byte IV");

        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("vault_a12", size), &envelope, |b, env| {
            let mut out = Vec::with_capacity(size);
            b.iter(|| {
                out.clear();
                open_into(&mut out, &key, env, AAD).expect("opens");
                black_box(&out);
            });
        });
        group.bench_with_input(BenchmarkId::new("ring", size), &ct_tag, |b, input| {
            let mut buf = Vec::with_capacity(size + 16);
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(input);
                let plaintext = ring
                    .open_in_place(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(AAD),
                        &mut buf,
                    )
                    .expect("opens");
                black_box(plaintext);
            });
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = seal, open
}
criterion_main!(benches);
