//! The keyring file: permissions, sharing between services, bad files,
//! redaction.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vault_api::{ErrorKind, KeyContext, KeyService};
use vault_format::KeyBlob;
use vault_local::{Keyring, LocalKeyService};

fn context() -> KeyContext {
    KeyContext::new()
        .with("organization_id", "org_123")
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The base64 master keys of a keyring file.
fn master_keys(path: &Path) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn created_with_owner_only_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/keyring.json");
    let keyring = Keyring::open_or_create(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(keyring.path(), Some(path.as_path()));
    assert_eq!(keyring.newest_version(), 1);

    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["format"], "vault-rs-keyring");
    assert_eq!(json["version"], 1);
    assert_eq!(json["keys"][0]["version"], 1);
    assert!(json["keys"][0]["created_at"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(
        vault_format::b64::decode(json["keys"][0]["key"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );

    // Opening again reads the same keys; rotating keeps the mode.
    let mut again = Keyring::open(&path).unwrap();
    assert_eq!(again.rotate().unwrap(), 2);
    assert_eq!(mode(&path), 0o600);
    let keys = master_keys(&path);
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
    assert_eq!(Keyring::open(&path).unwrap().newest_version(), 2);
    // No temporary file is left behind.
    let mut names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["keyring.json", "keyring.json.lock"]);
}

#[test]
fn group_or_world_access_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    Keyring::open_or_create(&path).unwrap();
    for bad in [0o644, 0o640, 0o604, 0o660, 0o606] {
        fs::set_permissions(&path, fs::Permissions::from_mode(bad)).unwrap();
        for error in [
            Keyring::open(&path).unwrap_err(),
            Keyring::open_or_create(&path).unwrap_err(),
            LocalKeyService::open(&path).unwrap_err(),
        ] {
            assert_eq!(error.kind(), ErrorKind::Keyring);
            let message = error.to_string();
            assert!(
                message.contains(&format!("chmod 600 {}", path.display())),
                "{message}"
            );
        }
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(Keyring::open(&path).is_ok());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    assert!(Keyring::open(&path).is_ok());
}

#[test]
fn corrupt_or_missing_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let error = Keyring::open(&path).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Keyring);
    assert!(error.to_string().contains("does not exist"), "{error}");

    let write = |text: &str| {
        let _ = fs::remove_file(&path);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    };
    let key = vault_format::b64::encode(&[9; 32]);
    for (text, expected) in [
        ("", "unexpected end of file"),
        ("{not json", "malformed JSON"),
        ("[]", "unexpected structure"),
        (
            r#"{"format":"something-else","version":1,"keys":[]}"#,
            "format",
        ),
        (
            r#"{"format":"vault-rs-keyring","version":1,"keys":[{"version":1,"created_at":0,"key":"!!"}]}"#,
            "not 32 bytes",
        ),
        (
            &format!(
                r#"{{"format":"vault-rs-keyring","version":1,"keys":[{{"version":0,"created_at":0,"key":"{key}"}}]}}"#
            ),
            "version 0",
        ),
    ] {
        write(text);
        for error in [
            Keyring::open(&path).unwrap_err(),
            Keyring::open_or_create(&path).unwrap_err(),
        ] {
            assert_eq!(error.kind(), ErrorKind::Keyring, "{text}");
            let message = error.to_string();
            assert!(message.contains(expected), "{text}: {message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
        }
    }
    // A directory in place of the file.
    let error = Keyring::open(dir.path()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Keyring);

    // A valid hand-written file is accepted, keys in any order.
    write(&format!(
        r#"{{"format":"vault-rs-keyring","version":1,"keys":[{{"version":3,"created_at":5,"key":"{key}"}},{{"version":1,"created_at":4,"key":"{key}"}}]}}"#
    ));
    let keyring = Keyring::open(&path).unwrap();
    assert_eq!(keyring.versions().collect::<Vec<_>>(), [1, 3]);
    assert_eq!(keyring.info().keys[1].created_at, 5);
}

#[tokio::test]
async fn two_services_on_one_file_interoperate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let a = LocalKeyService::open_or_create(&path).unwrap();
    let b = LocalKeyService::open(&path).unwrap();

    let from_a = a.create_data_key(&context()).await.unwrap();
    assert_eq!(
        b.decrypt_data_key(&from_a.encrypted_keys).await.unwrap(),
        from_a.data_key
    );

    // A rotates; B has not seen version 2 but re-reads the file.
    assert_eq!(a.rotate().unwrap(), 2);
    let after = a.create_data_key(&context()).await.unwrap();
    assert!(matches!(
        KeyBlob::parse(&after.encrypted_keys),
        KeyBlob::Local {
            keyring_version: 2,
            ..
        }
    ));
    assert_eq!(
        b.decrypt_data_key(&after.encrypted_keys).await.unwrap(),
        after.data_key
    );
    assert_eq!(b.keyring_info().newest, 2);

    // B rotates too (to 3, not a second 2) and A picks it up for wrapping.
    assert_eq!(b.rotate().unwrap(), 3);
    let from_a = a.create_data_key(&context()).await.unwrap();
    assert!(matches!(
        KeyBlob::parse(&from_a.encrypted_keys),
        KeyBlob::Local {
            keyring_version: 3,
            ..
        }
    ));
    assert_eq!(
        b.decrypt_data_key(&from_a.encrypted_keys).await.unwrap(),
        from_a.data_key
    );
    let rekeyed = b.rekey(&after.encrypted_keys, &context()).await.unwrap();
    assert_eq!(
        a.decrypt_data_key(&rekeyed.encrypted_keys).await.unwrap(),
        after.data_key
    );
    assert_eq!(master_keys(&path).len(), 3);
    assert_eq!(
        Keyring::open(&path).unwrap().versions().collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

#[test]
fn concurrent_rotations_lose_no_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    Keyring::open_or_create(&path).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut keyring = Keyring::open(&path).unwrap();
                (0..3)
                    .map(|_| keyring.rotate().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut versions: Vec<u32> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    versions.sort();
    assert_eq!(versions, (2..=13).collect::<Vec<_>>());
    assert_eq!(
        Keyring::open(&path).unwrap().versions().collect::<Vec<_>>(),
        (1..=13).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn replaced_or_removed_keyring_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let service = LocalKeyService::open_or_create(&path).unwrap();
    let pair = service.create_data_key(&context()).await.unwrap();

    fs::remove_file(&path).unwrap();
    let error = service.create_data_key(&context()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Keyring);
    assert!(error.to_string().contains("disappeared"), "{error}");
    // Known versions still unwrap from memory.
    assert!(service.decrypt_data_key(&pair.encrypted_keys).await.is_ok());

    // A different keyring at the same path is not silently mixed in.
    Keyring::open_or_create(&path).unwrap();
    let error = service.create_data_key(&context()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Keyring);
    assert!(
        error.to_string().contains("different master key"),
        "{error}"
    );
}

#[test]
fn debug_and_info_never_show_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let service = LocalKeyService::open_or_create(&path).unwrap();
    service.rotate().unwrap();
    let keyring = Keyring::open(&path).unwrap();
    let info = service.keyring_info();
    let printed = [
        format!("{service:?}"),
        format!("{service:#?}"),
        format!("{keyring:?}"),
        format!("{keyring:#?}"),
        format!("{info:?}"),
        serde_json::to_string(&info).unwrap(),
    ];
    for key in master_keys(&path) {
        let bytes = vault_format::b64::decode(&key).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let decimal = format!("{:?}", &bytes[..4]);
        for text in &printed {
            assert!(!text.contains(&key), "{text}");
            assert!(!text.contains(&key[..16]), "{text}");
            assert!(!text.to_lowercase().contains(&hex[..16]), "{text}");
            assert!(!text.contains(&decimal[1..decimal.len() - 1]), "{text}");
        }
    }
    assert_eq!(
        format!("{keyring:?}"),
        format!("Keyring {{ path: Some({path:?}), versions: [1, 2] }}")
    );
    assert_eq!(info.path.as_deref(), Some(path.as_path()));
    assert_eq!(info.newest, 2);
    assert_eq!(info.keys.len(), 2);
}

/// Copies a keyring file of the test data into a fresh private directory.
fn copy_of(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    fs::copy(&data, &path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    (dir, path)
}

/// The plaintext of `tests/data/keyring-v1-no-check.ciphertext`.
async fn open_legacy_ciphertext(service: &LocalKeyService) -> Vec<u8> {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keyring-v1-no-check.ciphertext"),
    )
    .unwrap();
    let mut buf = Vec::new();
    let envelope = vault_format::Envelope::parse_base64(text.trim(), &mut buf).unwrap();
    let key = service
        .decrypt_data_key(&envelope.encrypted_keys().unwrap())
        .await
        .unwrap();
    vault_crypto::open(&key, &envelope, b"").unwrap()
}

#[tokio::test]
async fn a_keyring_of_the_format_before_key_checks_opens_and_gains_them_at_the_next_write() {
    let (_dir, path) = copy_of("keyring-v1-no-check.json");
    let before = fs::read(&path).unwrap();
    let service = LocalKeyService::open(&path).unwrap();
    assert_eq!(service.keyring_info().newest, 2);
    assert_eq!(
        open_legacy_ciphertext(&service).await,
        b"made before key checks"
    );
    // Opening and unwrapping never rewrite the file.
    assert_eq!(fs::read(&path).unwrap(), before);
    // New data round-trips under the old keys.
    let pair = service.create_data_key(&context()).await.unwrap();
    assert_eq!(
        service
            .decrypt_data_key(&pair.encrypted_keys)
            .await
            .unwrap(),
        pair.data_key
    );

    // The next write (a rotation) adds a check to every key, old ones too,
    // and keeps every key.
    let old_keys = master_keys(&path);
    assert_eq!(service.rotate().unwrap(), 3);
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    for key in json["keys"].as_array().unwrap() {
        assert_eq!(key["check"].as_str().map(str::len), Some(44), "{key}");
    }
    assert_eq!(master_keys(&path)[..2], old_keys[..]);
    let reopened = LocalKeyService::open(&path).unwrap();
    assert_eq!(
        open_legacy_ciphertext(&reopened).await,
        b"made before key checks"
    );
    assert_eq!(
        reopened
            .decrypt_data_key(&pair.encrypted_keys)
            .await
            .unwrap(),
        pair.data_key
    );
}

/// `text` with the base64 character at `at` changed to another one.
fn change_char(text: &str, at: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_master_key_changed_by_one_character_is_refused_naming_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let mut keyring = Keyring::open_or_create(&path).unwrap();
    keyring.rotate().unwrap();
    let keys = master_keys(&path);
    let text = fs::read_to_string(&path).unwrap();
    let damaged = text.replace(&keys[0], &change_char(&keys[0], 5));
    assert_ne!(damaged, text);
    fs::write(&path, &damaged).unwrap();

    for error in [
        Keyring::open(&path).unwrap_err(),
        Keyring::open_or_create(&path).unwrap_err(),
        LocalKeyService::open(&path).unwrap_err(),
        keyring.rotate().unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::Keyring);
        let message = error.to_string();
        assert!(
            message.contains("master key version 1 does not match its check value"),
            "{message}"
        );
        assert!(!message.contains(&keys[0][..8]), "{message}");
    }
    // Nothing was written while it failed: no rotation, no repair.
    assert_eq!(fs::read_to_string(&path).unwrap(), damaged);

    // A damaged check value is refused the same way.
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let check = json["keys"][1]["check"].as_str().unwrap();
    fs::write(&path, text.replace(check, &change_char(check, 0))).unwrap();
    let error = Keyring::open(&path).unwrap_err().to_string();
    assert!(
        error.contains("master key version 2 does not match"),
        "{error}"
    );
}

#[test]
fn a_symlinked_keyring_is_read_through_and_rotated_at_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("real").join("keyring.json");
    Keyring::open_or_create(&target).unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    let mut keyring = Keyring::open(&link).unwrap();
    assert_eq!(keyring.rotate().unwrap(), 2);
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    assert_eq!(
        Keyring::open(&target)
            .unwrap()
            .versions()
            .collect::<Vec<_>>(),
        [1, 2],
        "the target holds the new key"
    );
    assert!(!dir.path().join("link.json.tmp").exists());
    assert_eq!(mode(&target), 0o600);
}

#[test]
fn a_keyring_in_a_directory_others_may_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let path = shared.join("keyring.json");
    Keyring::open_or_create(&path).unwrap();
    for bad in [0o777, 0o770, 0o1777] {
        fs::set_permissions(&shared, fs::Permissions::from_mode(bad)).unwrap();
        let error = Keyring::open(&path).unwrap_err().to_string();
        assert!(error.contains("may replace the keyring file"), "{error}");
        assert!(error.contains("chmod go-w"), "{error}");
    }
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
    Keyring::open(&path).unwrap();
}

#[test]
fn a_keyring_another_user_owns_is_refused() {
    // Only root can give a file away; elsewhere there is nothing to test.
    if effective_uid() != 0 {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    Keyring::open_or_create(&path).unwrap();
    std::os::unix::fs::chown(&path, Some(65_534), None).unwrap();
    let error = Keyring::open(&path).unwrap_err().to_string();
    assert!(error.contains("belongs to user id 65534"), "{error}");
}

/// The effective user id, read from /proc (the tests need no extra crate).
fn effective_uid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn open_never_creates_and_create_never_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let error = LocalKeyService::open(&path).unwrap_err().to_string();
    assert!(error.contains("does not exist"), "{error}");
    assert!(error.contains("workos-vault keyring init"), "{error}");
    assert!(!path.exists());
    Keyring::create(&path).unwrap();
    let before = fs::read(&path).unwrap();
    let error = LocalKeyService::create(&path).unwrap_err().to_string();
    assert!(error.contains("already exists"), "{error}");
    assert_eq!(fs::read(&path).unwrap(), before);
}
