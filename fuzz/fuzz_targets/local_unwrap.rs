//! The local key service's unwrap (`decrypt_data_key`, and `rekey`) over
//! arbitrary bytes and over real blobs with arbitrary edits. It must never
//! panic, and it must refuse every blob that is not byte for byte one it
//! wrote: any changed byte makes unwrapping fail.
//!
//! Input: a mode byte, then
//! - mode 0: the blob itself;
//! - mode 1: which real blob to start from, then edits of 4 bytes each:
//!   `[op, position high, position low, value]` with op 0 = xor the byte,
//!   1 = truncate, 2 = insert a byte, 3 = remove a byte;
//! - mode 2: bytes appended to a real blob's 51-byte header (magic, id,
//!   keyring version), to reach the entry parser quickly.
//!
//! Bit 7 of the mode byte calls `rekey` instead of `decrypt_data_key`.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tokio::runtime::{Builder, Runtime};
use vault_api::{DataKeyPair, KeyContext, KeyService};
use vault_local::LocalKeyService;
use vault_format::__private::LOCAL_HEADER_LEN;

struct Fixture {
    runtime: Runtime,
    service: LocalKeyService,
    pairs: Vec<DataKeyPair>,
    new_context: KeyContext,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let service = LocalKeyService::ephemeral();
    let contexts: Vec<Vec<(String, String)>> = vec![
        vec![("organization_id".into(), "org_123".into())],
        vec![("a".into(), "".into()), ("b".into(), "ü → ☃".into())],
        (0..10)
            .map(|i| (format!("k{i}"), "v".repeat(i * 50)))
            .collect(),
    ];
    let mut pairs = Vec::new();
    for (version, contexts) in [(1, &contexts), (2, &contexts[..1].to_vec())] {
        if version == 2 {
            service.rotate().expect("rotate an in-memory keyring");
        }
        for pairs_of in contexts.iter() {
            let context = KeyContext::from_pairs(pairs_of.clone()).expect("a valid context");
            let pair = runtime
                .block_on(service.create_data_key(&context))
                .expect("create a data key");
            pairs.push(pair);
        }
    }
    let new_context = KeyContext::new()
        .with("org", "rekeyed")
        .expect("a valid context");
    Fixture {
        runtime,
        service,
        pairs,
        new_context,
    }
});

fn edit(mut blob: Vec<u8>, edits: &[u8]) -> Vec<u8> {
    for chunk in edits.chunks_exact(4) {
        let position = usize::from(u16::from_be_bytes([chunk[1], chunk[2]]));
        let value = chunk[3];
        match chunk[0] % 4 {
            0 if !blob.is_empty() => {
                let at = position % blob.len();
                blob[at] ^= value;
            }
            1 => blob.truncate(position % (blob.len() + 1)),
            2 => {
                let at = position % (blob.len() + 1);
                blob.insert(at, value);
            }
            3 if !blob.is_empty() => {
                let at = position % blob.len();
                blob.remove(at);
            }
            _ => {}
        }
    }
    blob
}

fuzz_target!(|data: &[u8]| {
    let fixture = &*FIXTURE;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let pick = |index: u8| &fixture.pairs[usize::from(index) % fixture.pairs.len()];
    let blob = match mode & 0x7f {
        0 => rest.to_vec(),
        1 => {
            let Some((&index, edits)) = rest.split_first() else {
                return;
            };
            edit(pick(index).encrypted_keys.clone(), edits)
        }
        2 => {
            let Some((&index, tail)) = rest.split_first() else {
                return;
            };
            let mut blob = pick(index).encrypted_keys[..LOCAL_HEADER_LEN].to_vec();
            blob.extend_from_slice(tail);
            blob
        }
        _ => return,
    };
    let original = fixture.pairs.iter().find(|p| p.encrypted_keys == blob);
    let unwrapped = if mode & 0x80 == 0 {
        fixture
            .runtime
            .block_on(fixture.service.decrypt_data_key(&blob))
    } else {
        fixture
            .runtime
            .block_on(fixture.service.rekey(&blob, &fixture.new_context))
            .map(|pair| pair.data_key)
    };
    match (original, unwrapped) {
        (Some(pair), Ok(key)) => assert_eq!(key, pair.data_key),
        (Some(_), Err(error)) => panic!("a real blob did not unwrap: {error}"),
        (None, Ok(_)) => panic!("a blob the service never wrote unwrapped"),
        (None, Err(error)) => {
            // The error is for users: one line, no key material.
            assert!(!error.to_string().contains('\n'));
        }
    }
});
