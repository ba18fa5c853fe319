//! `vault::blocking::Vault` mirrors every operation of the async `Vault`.
#![cfg(feature = "blocking")]
#![allow(clippy::unwrap_used)]

use vault::blocking::Vault;
use vault::{DecryptOptions, EncryptOptions, KeyContext, Layout, LocalKeyService, HEAD_ROOM};

#[test]
fn every_async_operation_has_a_blocking_twin() {
    let vault = Vault::new(LocalKeyService::ephemeral()).unwrap();
    let context = KeyContext::new().with("organization_id", "org_1").unwrap();
    let row = DecryptOptions::new().aad(b"row");

    let plain = vault.encrypt("plain", &context).unwrap();
    assert_eq!(vault.decrypt(&plain).unwrap(), b"plain");

    let options = EncryptOptions::new().aad(b"row").layout(Layout::B);
    let bound = vault.encrypt_with("bound", &context, &options).unwrap();
    assert_eq!(vault.decrypt_with(&bound, &row).unwrap(), b"bound");
    assert_eq!(vault.decrypt_to_string(&bound, &row).unwrap(), "bound");
    assert_eq!(vault::inspect(&bound).unwrap().layout, Layout::B);

    let mut buf = vec![0u8; HEAD_ROOM];
    buf.extend_from_slice(b"in place");
    let start = vault
        .encrypt_in_place(&mut buf, HEAD_ROOM, &context, &EncryptOptions::new())
        .unwrap();
    let mut envelope = buf.split_off(start);
    vault
        .decrypt_in_place(&mut envelope, &DecryptOptions::new())
        .unwrap();
    assert_eq!(envelope, b"in place");

    let pair = vault.create_data_key(&context).unwrap();
    assert_eq!(
        vault.decrypt_data_key(&pair.encrypted_keys).unwrap(),
        pair.data_key
    );
    let keys = vault::inspect(&bound).unwrap().encrypted_keys;
    let key = vault.decrypt_data_key_base64(&keys).unwrap();
    assert_eq!(
        vault::decrypt_with_data_key(&bound, &key, &row).unwrap(),
        b"bound"
    );

    let other = KeyContext::new().with("organization_id", "org_2").unwrap();
    let rekeyed = vault.rekey(&bound, &other).unwrap();
    assert_eq!(vault.decrypt_with(&rekeyed, &row).unwrap(), b"bound");
    assert_eq!(vault.layout(), Layout::A12);
    assert!(std::sync::Arc::strong_count(vault.key_service()) >= 1);
}
