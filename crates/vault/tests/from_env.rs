//! `Vault::from_env`, alone in its own test binary: it changes the process
//! environment, which no other test may read at the same time.

#![allow(clippy::unwrap_used)] // Test helpers panic on purpose.

use vault::env::{backend_from_env, BackendKind, EnvOptions};
use vault::Vault;

const VARS: [&str; 4] = [
    vault::API_KEY_VAR,
    vault::BASE_URL_VAR,
    vault::KEYRING_VAR,
    vault::env::TRANSIT_KEY_VAR,
];

fn clear() {
    for name in VARS {
        std::env::remove_var(name);
    }
}

/// The error of `Vault::from_env`: a configuration error, of the facade or
/// of the key service it would build (Transit's variables).
fn config_error() -> String {
    match Vault::from_env() {
        Err(error @ vault::Error::Config(_)) => error.to_string(),
        Err(vault::Error::KeyService(error))
            if error.kind() == vault::KeyServiceErrorKind::Config =>
        {
            error.to_string()
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn from_env_picks_each_backend_and_fails_closed() {
    // One test owns the process environment, so no other test races it.
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("keyring.json");
    std::env::set_var("HOME", dir.path());
    std::env::remove_var("XDG_DATA_HOME");
    clear();

    // Nothing configured: an error naming the three ways, and no keyring
    // appears anywhere.
    let error = config_error();
    for name in [
        "WORKOS_API_KEY",
        "WORKOS_VAULT_TRANSIT_KEY",
        "WORKOS_VAULT_KEYRING",
    ] {
        assert!(error.contains(name), "{error}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // Set but blank is an error, never "unset".
    for name in VARS {
        for blank in ["", "  "] {
            std::env::set_var(name, blank);
            let error = config_error();
            assert!(
                error.contains(&format!("{name} is set but empty")),
                "{error}"
            );
            std::env::remove_var(name);
        }
    }

    // A keyring path that does not exist is refused, not created.
    std::env::set_var(vault::KEYRING_VAR, &keyring);
    let error = Vault::from_env().unwrap_err().to_string();
    assert!(error.contains("does not exist"), "{error}");
    assert!(!keyring.exists());

    // Code that mints keys may create it, and learns that it did.
    let backend = backend_from_env(EnvOptions::new().create_keyring(true)).unwrap();
    assert_eq!(backend.kind(), BackendKind::Keyring);
    assert!(backend.created_keyring());
    assert_eq!(backend.keyring_path(), Some(keyring.as_path()));
    let again = backend_from_env(EnvOptions::new().create_keyring(true)).unwrap();
    assert!(!again.created_keyring());

    let local = Vault::from_env().unwrap();
    assert!(format!("{:?}", local.key_service()).contains("LocalKeyService"));

    std::env::set_var(vault::API_KEY_VAR, "sk_test_from_env_secret");
    std::env::set_var(vault::BASE_URL_VAR, "http://127.0.0.1:9");
    let remote = Vault::from_env().unwrap();
    let debug = format!("{:?}", remote.key_service());
    assert!(debug.contains("HttpKeyService"), "{debug}");
    assert!(!debug.contains("sk_test_from_env_secret"), "{debug}");
    let backend = backend_from_env(EnvOptions::new()).unwrap();
    assert_eq!(backend.kind(), BackendKind::WorkOs);
    assert!(!format!("{backend:?}").contains("sk_test_from_env_secret"));

    // WorkOS and Transit at once is a guess: refused.
    std::env::set_var(vault::env::TRANSIT_KEY_VAR, "dek");
    let error = config_error();
    assert!(
        error.contains("both WORKOS_API_KEY and WORKOS_VAULT_TRANSIT_KEY"),
        "{error}"
    );

    // The CLI's default keyring is used only when asked for.
    clear();
    let error = config_error();
    assert!(error.contains("no key service is configured"), "{error}");
    let default = backend_from_env(EnvOptions::new().default_keyring(true));
    let error = default.unwrap_err().to_string();
    assert!(error.contains("does not exist"), "{error}");
    let created =
        backend_from_env(EnvOptions::new().default_keyring(true).create_keyring(true)).unwrap();
    assert!(created.created_keyring());
    assert!(created
        .keyring_path()
        .unwrap()
        .starts_with(dir.path().join(".local/share/vault-rs")));
    clear();
}
