//! `cargo xtask bench`'s migrate rows: `workos-vault migrate` re-framing a big
//! file of 1 KiB ciphertexts from A12 to B offline, its throughput against
//! coreutils `base64 -d | base64 -w0` over the same bytes and its peak RSS
//! against a fixed 64 MiB budget (memory must not grow with the input).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use base64::Engine;

use super::big::{measure, Usage};
use super::summary::{entry, Measurement};
use crate::util;

/// Peak RSS budget, whatever the input size.
const RSS_BUDGET_MIB: f64 = 64.0;
/// Ciphertext bytes per row.
const PAYLOAD: usize = 1024;

/// Rows of A12 envelopes (a WorkOS-shaped blob, 1 KiB of ciphertext),
/// `mib` MiB of text in all. Each row's raw length is a multiple of 3, so
/// its base64 has no padding and `base64 -d` reads the file as one stream.
fn write_rows(path: &Path, mib: usize) -> Result<u64, String> {
    let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut out = BufWriter::new(file);
    let mut blob = b"WOS.EKM.v1\0d4ecdb90-30fc-560a-80c4-a1ad67b2b53c".to_vec();
    blob.resize(200, 0x5a);
    let mut raw = Vec::with_capacity(12 + 16 + 2 + blob.len() + PAYLOAD);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut written = 0u64;
    let mut line = String::new();
    while written < (mib as u64) << 20 {
        raw.clear();
        for _ in 0..(12 + 16) / 4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            raw.extend_from_slice(&state.to_le_bytes()[..4]);
        }
        // LEB128 of 200: two bytes.
        raw.extend_from_slice(&[0xc8, 0x01]);
        raw.extend_from_slice(&blob);
        for _ in 0..PAYLOAD / 8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            raw.extend_from_slice(&state.to_le_bytes());
        }
        debug_assert_eq!(raw.len() % 3, 0);
        line.clear();
        base64::engine::general_purpose::STANDARD.encode_string(&raw, &mut line);
        line.push('\n');
        out.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
        written += line.len() as u64;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(written)
}

/// The rows: throughput against base64, peak RSS against the budget.
pub(crate) fn rows(
    vault: &Path,
    out_dir: &Path,
    quick: bool,
    repeats: usize,
) -> Result<Vec<Measurement>, String> {
    let mib = if quick { 32 } else { 1024 };
    let dir = out_dir.join("migrate");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (input, migrated, baseline) = (
        dir.join("a12.txt"),
        dir.join("b.txt"),
        dir.join("base64.txt"),
    );
    // Never used: re-framing calls no key service.
    let keyring = dir.join("keyring.json");
    let size = write_rows(&input, mib)?;
    let name = input.to_string_lossy().into_owned();
    let pipeline = format!("base64 -d '{name}' | base64 -w0");
    let (mut ours, mut theirs) = (Vec::<Usage>::new(), Vec::<Usage>::new());
    for _ in 0..repeats {
        ours.push(measure(
            vault,
            &["migrate", "--for", "go", &name],
            &migrated,
            &keyring,
        )?);
        theirs.push(measure(
            Path::new("sh"),
            &["-c", &pipeline],
            &baseline,
            &keyring,
        )?);
    }
    let out_len = fs::metadata(&migrated).map_err(|e| e.to_string())?.len();
    if out_len != size || keyring.exists() {
        return Err(format!(
            "migrate bench: {out_len} bytes out for {size} in, or a keyring was made"
        ));
    }
    let rate = |runs: &[Usage]| {
        runs.iter()
            .map(|u| size as f64 / f64::from(1 << 20) / u.seconds.max(1e-3))
            .collect::<Vec<_>>()
    };
    let peaks: Vec<f64> = ours.iter().map(|u| u.peak_mib).collect();
    let rows = vec![
        entry(
            &format!("migrate: re-frame {mib} MiB of 1 KiB ciphertexts A12 -> B, throughput"),
            "MiB/s",
            rate(&ours),
            rate(&theirs),
            "base64 -d | base64 -w0 (coreutils)",
            true,
            Some(1.0),
        ),
        entry(
            &format!("migrate: re-frame {mib} MiB, peak RSS"),
            "MiB",
            peaks,
            vec![RSS_BUDGET_MIB; repeats],
            "budget 64 MiB",
            false,
            Some(1.0),
        ),
    ];
    let _ = fs::remove_dir_all(&dir);
    Ok(rows)
}

/// `cargo xtask bench --migrate [--quick]`: these rows alone.
pub(crate) fn run_alone(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    util::run(util::cargo(&["build", "--release", "-p", "vault-cli"]))?;
    let target = util::root().join("target");
    let out_dir = target.join("bench");
    let rows = rows(
        &target.join("release").join("workos-vault"),
        &out_dir,
        quick,
        if quick { 1 } else { 3 },
    )?;
    let text = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}
