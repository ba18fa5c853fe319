//! `cargo xtask bench`'s big-input rows: `workos-vault encrypt` and `workos-vault decrypt`
//! of one large file, their peak memory against the budget (1.25x the
//! plaintext + 16 MiB) and their wall time against coreutils `base64`
//! encoding and decoding the same bytes, in the same run.
//!
//! Peak memory is the child's maximum resident set as GNU `time` reports
//! it (`/usr/bin/time`, Debian package `time`).

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::plan::Plan;
use super::summary::{entry, Measurement};

const GNU_TIME: &str = "/usr/bin/time";

/// One timed run: wall seconds and peak RSS in MiB.
pub(crate) struct Usage {
    pub(crate) seconds: f64,
    pub(crate) peak_mib: f64,
}

/// Runs `program args` with stdout to `out` under GNU time.
pub(crate) fn measure(
    program: &Path,
    args: &[&str],
    out: &Path,
    keyring: &Path,
) -> Result<Usage, String> {
    let report = out.with_extension("time");
    let stdout = File::create(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let status = Command::new(GNU_TIME)
        .arg("-o")
        .arg(&report)
        .args(["-f", "%e %M"])
        .arg(program)
        .args(args)
        .env("WORKOS_VAULT_KEYRING", keyring)
        .env_remove("WORKOS_API_KEY")
        .stdin(Stdio::null())
        .stdout(stdout)
        .status()
        .map_err(|e| format!("cannot run {GNU_TIME} (apt-get install time): {e}"))?;
    if !status.success() {
        return Err(format!(
            "{} {args:?} failed with {status}",
            program.display()
        ));
    }
    let text = fs::read_to_string(&report).map_err(|e| format!("no time report: {e}"))?;
    let mut fields = text.split_whitespace();
    let seconds: f64 = fields
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad time report")?;
    let kib: f64 = fields
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad time report")?;
    Ok(Usage {
        seconds,
        peak_mib: kib / 1024.0,
    })
}

/// `len` pseudo-random bytes (xorshift: incompressible enough, and fast).
fn write_plaintext(path: &Path, len: usize) -> Result<(), String> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut file =
        File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len());
        file.write_all(&block[..n]).map_err(|e| e.to_string())?;
        left -= n;
    }
    Ok(())
}

/// The rows: peak RSS against the budget, wall time against `base64`.
pub fn big_inputs(vault: &Path, out_dir: &Path, plan: &Plan) -> Result<Vec<Measurement>, String> {
    let mib: u32 = if plan.quick { 32 } else { 256 };
    let dir = out_dir.join("big");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (plain, sealed, opened) = (
        dir.join("plain.bin"),
        dir.join("sealed.txt"),
        dir.join("opened.bin"),
    );
    let (encoded, decoded) = (dir.join("encoded.txt"), dir.join("decoded.bin"));
    let keyring = dir.join("keyring.json");
    write_plaintext(&plain, (mib as usize) << 20)?;
    let base64 = Path::new("base64");
    let name = |p: &Path| p.to_string_lossy().into_owned();
    let (mut enc, mut dec, mut b64_enc, mut b64_dec) = (vec![], vec![], vec![], vec![]);
    for _ in 0..plan.repeats {
        enc.push(measure(
            vault,
            &["encrypt", "-c", "org=bench", &name(&plain)],
            &sealed,
            &keyring,
        )?);
        dec.push(measure(
            vault,
            &["decrypt", &name(&sealed)],
            &opened,
            &keyring,
        )?);
        b64_enc.push(measure(
            base64,
            &["-w0", &name(&plain)],
            &encoded,
            &keyring,
        )?);
        b64_dec.push(measure(
            base64,
            &["-d", &name(&encoded)],
            &decoded,
            &keyring,
        )?);
    }
    if fs::read(&opened).map_err(|e| e.to_string())?
        != fs::read(&plain).map_err(|e| e.to_string())?
    {
        return Err("big input: decrypt did not give back the plaintext".to_owned());
    }
    let budget = 1.25 * f64::from(mib) + 16.0;
    let peaks = |runs: &[Usage]| runs.iter().map(|u| u.peak_mib).collect::<Vec<_>>();
    let times = |runs: &[Usage]| runs.iter().map(|u| u.seconds).collect::<Vec<_>>();
    let budgets = vec![budget; plan.repeats];
    let rows = vec![
        entry(
            &format!("big input: workos-vault encrypt {mib} MiB, peak RSS"),
            "MiB",
            peaks(&enc),
            budgets.clone(),
            "budget 1.25x + 16 MiB",
            false,
            Some(1.0),
        ),
        entry(
            &format!("big input: workos-vault decrypt {mib} MiB, peak RSS"),
            "MiB",
            peaks(&dec),
            budgets,
            "budget 1.25x + 16 MiB",
            false,
            Some(1.0),
        ),
        entry(
            &format!("big input: workos-vault encrypt {mib} MiB, wall time"),
            "s",
            times(&enc),
            times(&b64_enc),
            "base64 (coreutils)",
            false,
            Some(1.0 / 1.5),
        ),
        entry(
            &format!("big input: workos-vault decrypt {mib} MiB, wall time"),
            "s",
            times(&dec),
            times(&b64_dec),
            "base64 -d (coreutils)",
            false,
            Some(1.0 / 1.5),
        ),
    ];
    let _ = fs::remove_dir_all(&dir);
    Ok(rows)
}
