//! The local key service on arbitrary bytes: always an error, never a panic.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use vault_api::{ErrorKind, KeyContext, KeyService};
use vault_format::__private::LOCAL_MAGIC;
use vault_local::LocalKeyService;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_are_invalid_keys(blob in proptest::collection::vec(any::<u8>(), 0..512)) {
        let service = LocalKeyService::ephemeral();
        let error = rt().block_on(service.decrypt_data_key(&blob)).unwrap_err();
        prop_assert_eq!(error.kind(), ErrorKind::InvalidKeys);
    }

    #[test]
    fn arbitrary_bodies_after_a_valid_header_are_invalid_keys(
        version in prop_oneof![Just(1u32), any::<u32>()],
        count in prop_oneof![1u8..=10, any::<u8>()],
        body in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let service = LocalKeyService::ephemeral();
        let blob = [
            LOCAL_MAGIC.as_slice(),
            b"6f9619ff-8b86-4011-b42d-00c04fc964ff",
            &version.to_be_bytes(),
            &[count],
            &body,
        ]
        .concat();
        let error = rt().block_on(service.decrypt_data_key(&blob)).unwrap_err();
        prop_assert_eq!(error.kind(), ErrorKind::InvalidKeys);
    }

    #[test]
    fn well_framed_entries_with_random_crypto_are_invalid_keys(
        entries in proptest::collection::vec(
            ("[a-z]{1,8}", "[a-z]{0,8}", proptest::collection::vec(any::<u8>(), 60)),
            1..4,
        ),
    ) {
        // Correct lengths everywhere, so parsing reaches the cryptography.
        let service = LocalKeyService::ephemeral();
        let mut entries = entries;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        let mut blob = [
            LOCAL_MAGIC.as_slice(),
            b"6f9619ff-8b86-4011-b42d-00c04fc964ff",
            &1u32.to_be_bytes(),
        ]
        .concat();
        blob.push(entries.len() as u8);
        for (name, value, crypto) in &entries {
            blob.extend_from_slice(&(name.len() as u16).to_be_bytes());
            blob.extend_from_slice(name.as_bytes());
            blob.extend_from_slice(&(value.len() as u16).to_be_bytes());
            blob.extend_from_slice(value.as_bytes());
            blob.extend_from_slice(crypto);
        }
        let error = rt().block_on(service.decrypt_data_key(&blob)).unwrap_err();
        prop_assert_eq!(error.kind(), ErrorKind::InvalidKeys);
        prop_assert!(error.to_string().contains("do not open"), "{}", error);
    }

    #[test]
    fn any_valid_context_round_trips(
        pairs in proptest::collection::btree_map("\\PC{1,20}", "\\PC{0,40}", 1..=10),
    ) {
        let service = LocalKeyService::ephemeral();
        let context = KeyContext::from_pairs(pairs).unwrap();
        let rt = rt();
        let pair = rt.block_on(service.create_data_key(&context)).unwrap();
        let key = rt.block_on(service.decrypt_data_key(&pair.encrypted_keys)).unwrap();
        prop_assert!(key == pair.data_key);
    }
}
