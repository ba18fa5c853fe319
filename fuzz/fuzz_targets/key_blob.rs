//! `KeyBlob::parse` over arbitrary bytes: never panics, and what it reports
//! is a faithful split of its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault_format::{KeyBlob};
use vault_format::__private::{ID_LEN, LOCAL_HEADER_LEN, LOCAL_MAGIC, WORKOS_MAGIC};

fuzz_target!(|data: &[u8]| {
    let blob = KeyBlob::parse(data);
    match blob {
        KeyBlob::WorkOs {
            version,
            data_key_id,
            rest,
        } => {
            assert!(data.starts_with(WORKOS_MAGIC));
            assert_eq!(version, "v1");
            assert_eq!(data_key_id.len(), ID_LEN);
            assert_eq!(
                &data[WORKOS_MAGIC.len()..][..ID_LEN],
                data_key_id.as_bytes()
            );
            assert_eq!(rest, &data[WORKOS_MAGIC.len() + ID_LEN..]);
            assert_eq!(blob.kind().name(), "workos");
        }
        KeyBlob::Local {
            version,
            data_key_id,
            keyring_version,
            rest,
        } => {
            assert!(data.starts_with(LOCAL_MAGIC));
            assert_eq!(version, "v1");
            assert_eq!(data_key_id.len(), ID_LEN);
            let header = &data[LOCAL_MAGIC.len() + ID_LEN..LOCAL_HEADER_LEN];
            assert_eq!(header, keyring_version.to_be_bytes());
            assert_eq!(rest, &data[LOCAL_HEADER_LEN..]);
            assert_eq!(blob.kind().name(), "local");
        }
        KeyBlob::Unknown(bytes) => {
            assert_eq!(bytes, data);
            assert_eq!(blob.kind().name(), "unknown");
            assert_eq!(blob.data_key_id(), None);
        }
        _ => {}
    }
    assert_eq!(blob.is_known(), blob.version().is_some());
    if let Some(id) = blob.data_key_id() {
        // A UUID in text form: 8-4-4-4-12 hexadecimal digits.
        assert!(id
            .bytes()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }));
    }
});
