//! Offline `decrypt` with a data key (WORKOS_VAULT_DATA_KEY) against every
//! SDK-written vector.

#![allow(clippy::unwrap_used)] // Test helpers panic on purpose.

use assert_cmd::Command;

/// What an offline `decrypt` needs of a positive or negative vector.
struct Case<'a> {
    id: &'a str,
    aad: Option<&'a str>,
    data_key_b64: &'a str,
    ciphertext_b64: &'a str,
}

fn decrypt(case: &Case) -> std::process::Output {
    let mut command = Command::cargo_bin("workos-vault").unwrap();
    command
        .env_remove("WORKOS_API_KEY")
        .env("WORKOS_VAULT_DATA_KEY", case.data_key_b64)
        .arg("decrypt");
    if let Some(aad) = case.aad {
        command.args(["--aad", aad]);
    }
    command
        .write_stdin(case.ciphertext_b64.as_bytes())
        .output()
        .unwrap()
}

#[test]
fn offline_decrypt_opens_every_positive_and_refuses_every_negative() {
    let file = vault_testdata::sdk_vectors();
    for vector in &file.vectors {
        let output = decrypt(&Case {
            id: &vector.id,
            aad: vector.aad.as_deref(),
            data_key_b64: &vector.data_key_b64,
            ciphertext_b64: &vector.ciphertext_b64,
        });
        assert!(
            output.status.success(),
            "{}: {}",
            vector.id,
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            vector.plaintext_utf8,
            "{}",
            vector.id
        );
    }
    for negative in &file.negative {
        let case = Case {
            id: &negative.id,
            aad: negative.aad.as_deref(),
            data_key_b64: &negative.data_key_b64,
            ciphertext_b64: &negative.ciphertext_b64,
        };
        let output = decrypt(&case);
        let code = output.status.code();
        assert!(
            code == Some(1) || code == Some(2),
            "{}: exit {code:?}",
            case.id
        );
        assert!(output.stdout.is_empty(), "{}: partial output", case.id);
    }
    println!(
        "{} positives opened, {} negatives refused",
        file.vectors.len(),
        file.negative.len()
    );
}
