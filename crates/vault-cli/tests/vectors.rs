//! Offline `decrypt --data-key` against every SDK-written vector.

#![allow(clippy::unwrap_used)] // Test helpers panic on purpose.

use assert_cmd::Command;
use serde::Deserialize;

const VECTORS: &str = include_str!("../../../tests/data/sdk-vectors.json");

#[derive(Deserialize)]
struct File {
    vectors: Vec<Case>,
    negative: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    #[serde(default)]
    plaintext_utf8: Option<String>,
    aad: Option<String>,
    data_key_b64: String,
    ciphertext_b64: String,
}

fn decrypt(case: &Case) -> std::process::Output {
    let mut command = Command::cargo_bin("vault").unwrap();
    command
        .env_remove("WORKOS_API_KEY")
        .args(["decrypt", "--data-key", &case.data_key_b64]);
    if let Some(aad) = &case.aad {
        command.args(["--aad", aad]);
    }
    command
        .write_stdin(case.ciphertext_b64.as_bytes())
        .output()
        .unwrap()
}

#[test]
fn offline_decrypt_opens_every_positive_and_refuses_every_negative() {
    let file: File = serde_json::from_str(VECTORS).unwrap();
    for case in &file.vectors {
        let output = decrypt(case);
        assert!(
            output.status.success(),
            "{}: {}",
            case.id,
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            Some(String::from_utf8(output.stdout).unwrap()),
            case.plaintext_utf8,
            "{}",
            case.id
        );
    }
    for case in &file.negative {
        let output = decrypt(case);
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
