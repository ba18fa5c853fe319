//! `cargo xtask fuzz [--seconds N] [TARGET...]`: seeds each fuzz target's
//! corpus from `tests/data/sdk-vectors.json`, then runs every target (or
//! the ones named) for N seconds each, one after another, at the lowest
//! CPU priority. Needs the nightly toolchain and cargo-fuzz.
//!
//! Seeds go to `fuzz/corpus/<target>/seed-*` (git-ignored, rewritten on
//! every run); crashes to `fuzz/artifacts/<target>/`, and each target's
//! libFuzzer output to `fuzz/artifacts/<target>/fuzz.log`.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;

use crate::util;

/// Every target, in the order they run: `fuzz/Cargo.toml`'s `[[bin]]`s.
pub const TARGETS: [&str; 4] = ["parse", "key_blob", "local_unwrap", "server_request"];

const DEFAULT_SECONDS: u64 = 60;

pub fn run(args: &[String]) -> Result<(), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets: Vec<&str> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().ok_or("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .map_err(|_| format!("--seconds needs a number, got {value:?}"))?;
            }
            name => match TARGETS.iter().find(|t| **t == name) {
                Some(target) => targets.push(target),
                None => {
                    return Err(format!(
                        "unknown fuzz target {name:?}; the targets are {}",
                        TARGETS.join(", ")
                    ))
                }
            },
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }

    let fuzz_dir = util::root().join("fuzz");
    let seeds = Seeds::from_vectors(&util::root().join("tests/data/sdk-vectors.json"))?;
    for target in &targets {
        seeds.write(target, &fuzz_dir.join("corpus").join(target))?;
    }
    util::run(nightly(&fuzz_dir, &["fuzz", "build"]))?;

    let mut summary = Vec::new();
    let mut failed = Vec::new();
    for target in targets {
        let outcome = run_target(&fuzz_dir, target, seconds)?;
        if outcome.crash.is_some() {
            failed.push(target);
        }
        summary.push(outcome.line(target, seconds));
    }
    eprintln!("\nfuzz summary:");
    for line in &summary {
        eprintln!("  {line}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz targets failed: {}; reproduce with `cd fuzz && cargo +nightly fuzz run TARGET ARTIFACT`",
            failed.join(", ")
        ))
    }
}

/// `cargo +nightly ARGS` in `fuzz/`, at the lowest priority on Unix.
fn nightly(fuzz_dir: &Path, args: &[&str]) -> Command {
    let mut command = if cfg!(unix) {
        let mut nice = Command::new("nice");
        nice.args(["-n", "19", "cargo"]);
        nice
    } else {
        Command::new("cargo")
    };
    command.arg("+nightly").args(args).current_dir(fuzz_dir);
    // `cargo xtask` runs under the pinned stable toolchain; do not let its
    // environment pick the toolchain or the compiler for the fuzz build.
    for var in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
    ] {
        command.env_remove(var);
    }
    command
}

struct Outcome {
    executions: Option<u64>,
    crash: Option<String>,
    status: String,
}

impl Outcome {
    fn line(&self, target: &str, seconds: u64) -> String {
        let executions = self
            .executions
            .map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        match &self.crash {
            None => format!("{target}: {seconds} s, {executions} executions, no crash"),
            Some(artifact) => format!(
                "{target}: {executions} executions, FAILED ({}): {artifact}",
                self.status
            ),
        }
    }
}

fn run_target(fuzz_dir: &Path, target: &str, seconds: u64) -> Result<Outcome, String> {
    let artifacts = fuzz_dir.join("artifacts").join(target);
    fs::create_dir_all(&artifacts)
        .map_err(|e| format!("cannot create {}: {e}", artifacts.display()))?;
    let log_path = artifacts.join("fuzz.log");
    let max_time = format!("-max_total_time={seconds}");
    let mut command = nightly(
        fuzz_dir,
        &[
            "fuzz",
            "run",
            target,
            "--",
            &max_time,
            "-timeout=30",
            "-print_final_stats=1",
        ],
    );
    eprintln!(
        "$ fuzz {target} for {seconds} s (log: {})",
        log_path.display()
    );
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start cargo +nightly fuzz run {target}: {e}"))?;
    let mut log = Vec::new();
    let mut executions = None;
    let mut crash = None;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
                executions = n.trim().parse().ok();
            }
            if let Some((_, path)) = line.split_once("Test unit written to ") {
                crash = Some(path.trim().to_owned());
            }
            if line.contains("ERROR: libFuzzer") || line.contains("panicked at") {
                eprintln!("  {target}: {line}");
            }
            log.push(line);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("fuzz run {target} did not finish: {e}"))?;
    fs::write(&log_path, log.join("\n") + "\n")
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    if !status.success() && crash.is_none() {
        crash = Some(format!("see {}", log_path.display()));
    }
    Ok(Outcome {
        executions,
        crash,
        status: status.to_string(),
    })
}

/// Seed inputs, built from the SDK vectors.
struct Seeds {
    /// Decoded ciphertexts, positive and negative, and a few as text.
    envelopes: Vec<Vec<u8>>,
    /// Decoded `encrypted_keys` blobs (WorkOS-shaped).
    blobs: Vec<Vec<u8>>,
    /// The blobs' base64 text.
    blob_texts: Vec<String>,
}

impl Seeds {
    fn from_vectors(path: &Path) -> Result<Seeds, String> {
        let text =
            fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Seeds::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<Seeds, String> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut seeds = Seeds {
            envelopes: Vec::new(),
            blobs: Vec::new(),
            blob_texts: Vec::new(),
        };
        for list in ["vectors", "negative"] {
            let entries = json[list]
                .as_array()
                .ok_or_else(|| format!("no {list:?} array"))?;
            for entry in entries {
                if let Some(text) = entry["ciphertext_b64"].as_str() {
                    // Negatives include bad base64 on purpose: keep their text.
                    match engine.decode(text) {
                        Ok(bytes) => seeds.envelopes.push(bytes),
                        Err(_) => seeds.envelopes.push(text.as_bytes().to_vec()),
                    }
                }
                if let Some(text) = entry["encrypted_keys_b64"].as_str() {
                    let blob = engine
                        .decode(text)
                        .map_err(|e| format!("encrypted_keys_b64 is not base64: {e}"))?;
                    seeds.blobs.push(blob);
                    seeds.blob_texts.push(text.to_owned());
                }
            }
        }
        if seeds.envelopes.is_empty() || seeds.blobs.is_empty() {
            return Err("no ciphertexts or no encrypted keys".to_owned());
        }
        // A few ciphertexts as base64 text, for the text front door.
        let texts: Vec<Vec<u8>> = json["vectors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["ciphertext_b64"].as_str())
            .take(8)
            .map(|t| t.as_bytes().to_vec())
            .collect();
        seeds.envelopes.extend(texts);
        Ok(seeds)
    }

    /// The seed inputs of one target, in its input format (see each
    /// target's doc comment).
    fn for_target(&self, target: &str) -> Vec<Vec<u8>> {
        let local_blob = local_blob_shape();
        match target {
            "parse" => self.envelopes.clone(),
            "key_blob" => {
                let mut seeds = self.blobs.clone();
                seeds.push(local_blob);
                seeds
            }
            "local_unwrap" => {
                // Mode 1: each real blob as written (no edits), then with
                // one edit of each kind; mode 2: a header and a body; mode
                // 0: foreign blobs; bit 7: the same through rekey.
                let mut seeds: Vec<Vec<u8>> = (0..8u8).map(|i| vec![1, i]).collect();
                for op in 0..4u8 {
                    seeds.push(vec![1, op, op, 0, 60, 0x41]);
                }
                seeds.push([&[2u8, 0][..], &local_blob[51..]].concat());
                seeds.push(vec![0x81, 0]);
                for blob in self.blobs.iter().take(4) {
                    seeds.push([&[0u8][..], blob].concat());
                }
                seeds.push([&[0u8][..], &local_blob[..]].concat());
                seeds
            }
            "server_request" => {
                let wos = self.blob_texts.first().map_or("", String::as_str);
                let bodies: [(u8, u8, String); 12] = [
                    (
                        0,
                        0,
                        r#"{"context":{"organization_id":"org_123"}}"#.to_owned(),
                    ),
                    (0, 1, r#"{"keys":"@BLOB@"}"#.to_owned()),
                    (
                        0,
                        2,
                        r#"{"context":{"org":"o"},"encrypted_keys":"@BLOB@"}"#.to_owned(),
                    ),
                    (0, 9, r#"{"keys":"@BLOB@"}"#.to_owned()),
                    (0x21, 3, String::new()),
                    (0, 1, format!(r#"{{"keys":"{wos}"}}"#)),
                    (0, 0, r#"{"context":{"org":1}}"#.to_owned()),
                    (0, 0, r#"{"context":{}}"#.to_owned()),
                    (0, 1, r#"{"keys":42}"#.to_owned()),
                    (0, 1, r#"{"keys":"not*base64"}"#.to_owned()),
                    (0x08, 1, r#"{"keys":"@BLOB@"}"#.to_owned()),
                    (0x40, 0, r#"{"context":{"a":"b"}}"#.to_owned()),
                ];
                bodies
                    .into_iter()
                    .map(|(control, route, body)| [&[control, route][..], body.as_bytes()].concat())
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    fn write(&self, target: &str, dir: &PathBuf) -> Result<(), String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for (i, seed) in self.for_target(target).iter().enumerate() {
            let path = dir.join(format!("seed-{i:03}"));
            fs::write(&path, seed).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// The shape of a local key service blob (magic, id, keyring version 1,
/// one entry), with a zero nonce and sealed key: it parses, and fails to
/// open.
fn local_blob_shape() -> Vec<u8> {
    let mut blob = b"VRS.LKS.v1\0".to_vec();
    blob.extend_from_slice(b"0237abe8-fc0d-4456-831c-3a2d133e9f90");
    blob.extend_from_slice(&1u32.to_be_bytes());
    blob.push(1);
    for field in [&b"organization_id"[..], b"org_123"] {
        blob.extend_from_slice(&(field.len() as u16).to_be_bytes());
        blob.extend_from_slice(field);
    }
    blob.extend_from_slice(&[0; 12 + 48]);
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds come from the repository's vectors, and every target gets
    /// some: a drift in the vector file's shape fails here, not in a fuzz
    /// run nobody watches.
    #[test]
    fn every_target_is_seeded_from_the_vectors() {
        let seeds = Seeds::from_vectors(&util::root().join("tests/data/sdk-vectors.json"))
            .expect("the vectors parse");
        assert_eq!(seeds.blobs.len(), 52);
        assert!(seeds.envelopes.len() >= 52 + 25);
        for target in TARGETS {
            assert!(!seeds.for_target(target).is_empty(), "{target}");
        }
        assert_eq!(
            local_blob_shape().len(),
            11 + 36 + 4 + 1 + 2 + 15 + 2 + 7 + 60
        );
    }

    /// `TARGETS` lists exactly the fuzz crate's binaries.
    #[test]
    fn targets_match_the_fuzz_crate() {
        let manifest =
            fs::read_to_string(util::root().join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
        let names: Vec<&str> = manifest
            .lines()
            .filter_map(|line| line.strip_prefix("name = \""))
            .filter_map(|rest| rest.strip_suffix('"'))
            .filter(|name| *name != "vault-fuzz")
            .collect();
        assert_eq!(names, TARGETS);
    }
}
