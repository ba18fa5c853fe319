//! `Vault::from_env`, alone in its own test binary: it changes the process
//! environment, which no other test may read at the same time.

#![allow(clippy::unwrap_used)] // Test helpers panic on purpose.

use vault::Vault;

#[test]
fn from_env_picks_each_backend() {
    // One test owns the process environment, so no other test races it.
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("keyring.json");
    std::env::remove_var(vault::API_KEY_VAR);
    std::env::set_var(vault::KEYRING_VAR, &keyring);
    let local = Vault::from_env().unwrap();
    assert!(format!("{:?}", local.key_service()).contains("LocalKeyService"));
    assert!(keyring.exists(), "the keyring is created on first use");

    std::env::set_var(vault::API_KEY_VAR, "sk_test_from_env_secret");
    std::env::set_var(vault::BASE_URL_VAR, "http://127.0.0.1:9");
    let remote = Vault::from_env().unwrap();
    let debug = format!("{:?}", remote.key_service());
    assert!(debug.contains("HttpKeyService"), "{debug}");
    assert!(!debug.contains("sk_test_from_env_secret"), "{debug}");
    std::env::remove_var(vault::API_KEY_VAR);
    std::env::remove_var(vault::BASE_URL_VAR);
    std::env::remove_var(vault::KEYRING_VAR);
}
