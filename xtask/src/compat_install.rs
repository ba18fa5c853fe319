//! Installs the pinned peer SDKs that the cross-SDK compatibility tests drive
//! (see `tests/compat/README.md`):
//!
//! - `tests/compat/node11`, `node8` and `node7`: `npm ci` from the
//!   committed `package-lock.json` into each folder's `node_modules/`;
//! - `tests/compat/pydeps`: `pip install --target` from
//!   `tests/compat/python/requirements.txt`;
//! - the driver for the official Rust crate (`install_rust_driver`):
//!   `cargo build --release --locked` of `tests/compat/rust`, a project
//!   outside the workspace with its own `Cargo.lock`, into
//!   `<target dir>/compat-rust`.
//!
//! Each step is skipped when a stamp file written by the last successful
//! install still matches its inputs, so running it before every test run is
//! cheap, and needs no network once it has run. Only std is used. The
//! interpreter defaults to `python3` and can be overridden with
//! `WORKOS_VAULT_COMPAT_PYTHON`.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Node SDK folders under `tests/compat/`, one pinned version each.
const NODE_FOLDERS: &[&str] = &["node11", "node8", "node7"];

/// The Rust driver's package (and binary) name in `tests/compat/rust`.
const RUST_DRIVER: &str = "vault-compat-rust";

/// Name of the stamp file kept inside each install target.
const STAMP: &str = ".vault-compat-stamp";

/// The oldest Python that the pinned `workos` package supports.
const MIN_PYTHON: (u32, u32) = (3, 10);

/// Installs every peer SDK under `root/tests/compat`, skipping the ones that
/// are already installed from the same lockfile or requirements.
pub fn install(root: &Path) -> Result<(), String> {
    let compat = root.join("tests").join("compat");
    for folder in NODE_FOLDERS {
        install_node(&compat.join(folder))?;
    }
    install_python(&compat)
}

fn install_node(dir: &Path) -> Result<(), String> {
    let stamp = node_stamp(dir)?;
    let stamp_path = dir.join("node_modules").join(STAMP);
    let installed = dir
        .join("node_modules")
        .join("@workos-inc")
        .join("node")
        .join("package.json");
    if installed.is_file() && stamp_matches(&stamp_path, &stamp) {
        eprintln!("compat: {} is up to date", dir.display());
        return Ok(());
    }
    probe(
        Command::new("npm").arg("--version"),
        "npm",
        "install Node.js 20 or newer (it ships npm) to run the cross-SDK compatibility tests",
    )?;
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund"]).current_dir(dir);
    crate::util::run(npm)?;
    write_stamp(&stamp_path, &stamp)
}

/// The stamp of a Node folder: a hash of its manifest and lockfile.
fn node_stamp(dir: &Path) -> Result<String, String> {
    let manifest = read(&dir.join("package.json"))?;
    let lock = read(&dir.join("package-lock.json"))?;
    Ok(format!("fnv1a64 {:016x}\n", fnv1a64(&[&manifest, &lock])))
}

fn install_python(compat: &Path) -> Result<(), String> {
    let python =
        std::env::var("WORKOS_VAULT_COMPAT_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let requirements = compat.join("python").join("requirements.txt");
    let target = compat.join("pydeps");
    let version = python_version(&python)?;
    let stamp = format!(
        "fnv1a64 {:016x}\npython {version}\n",
        fnv1a64(&[&read(&requirements)?])
    );
    let stamp_path = target.join(STAMP);
    if target.join("workos").is_dir() && stamp_matches(&stamp_path, &stamp) {
        eprintln!("compat: {} is up to date", target.display());
        return Ok(());
    }
    probe(
        Command::new(&python).args(["-m", "pip", "--version"]),
        &format!("{python} -m pip"),
        "install pip for that interpreter (Debian: apt-get install python3-pip)",
    )?;
    let mut pip = crate::util::pip_install_into(&python, &target)?;
    pip.arg("-r").arg(&requirements).current_dir(compat);
    crate::util::run(pip)?;
    write_stamp(&stamp_path, &stamp)
}

/// Builds the Rust crate's driver unless the binary and its stamp (a hash of
/// the manifest, lockfile and source, and the cargo version) are current;
/// returns the binary's path.
pub fn install_rust_driver(root: &Path) -> Result<PathBuf, String> {
    let project = root.join("tests").join("compat").join("rust");
    let target = rust_target_dir(root);
    let binary = target
        .join("release")
        .join(format!("{RUST_DRIVER}{}", std::env::consts::EXE_SUFFIX));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let version = probe(
        Command::new(&cargo).arg("--version"),
        "cargo",
        "run this through `cargo xtask`",
    )?;
    let stamp = rust_stamp(&project, version.trim())?;
    let stamp_path = target.join(STAMP);
    if binary.is_file() && stamp_matches(&stamp_path, &stamp) {
        eprintln!("compat: {} is up to date", binary.display());
        return Ok(binary);
    }
    let mut build = Command::new(&cargo);
    build
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(project.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .current_dir(&project);
    crate::util::run(build)?;
    write_stamp(&stamp_path, &stamp)?;
    Ok(binary)
}

/// `compat-rust` inside the workspace's target directory (`CARGO_TARGET_DIR`,
/// relative to `root` when relative, else `root/target`), so that the shared
/// target directory of several checkouts also shares this build.
fn rust_target_dir(root: &Path) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    base.join("compat-rust")
}

/// The stamp of the Rust driver: its manifest, lockfile and source files,
/// and the cargo that builds it.
fn rust_stamp(project: &Path, cargo_version: &str) -> Result<String, String> {
    let mut parts = vec![
        read(&project.join("Cargo.toml"))?,
        read(&project.join("Cargo.lock"))?,
    ];
    let src = project.join("src");
    let mut sources: Vec<PathBuf> = fs::read_dir(&src)
        .map_err(|e| format!("cannot list {}: {e}", src.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot list {}: {e}", src.display()))?;
    sources.sort();
    for source in &sources {
        parts.push(read(source)?);
    }
    let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Ok(format!(
        "fnv1a64 {:016x}\n{cargo_version}\n",
        fnv1a64(&parts)
    ))
}

/// `major.minor.patch` of `python`; fails clearly when it is missing or too old.
fn python_version(python: &str) -> Result<String, String> {
    let output = probe(
        Command::new(python).args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]),
        python,
        "install Python 3.10 or newer, or point WORKOS_VAULT_COMPAT_PYTHON at one",
    )?;
    let version = output.trim().to_owned();
    let mut parts = version.split('.').map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= MIN_PYTHON => Ok(version),
        (Some(Ok(_)), Some(Ok(_))) => Err(format!(
            "{python} is Python {version}; the compatibility tests need {}.{} or newer \
             (set WORKOS_VAULT_COMPAT_PYTHON to another interpreter)",
            MIN_PYTHON.0, MIN_PYTHON.1
        )),
        _ => Err(format!("cannot read the version of {python}: {version:?}")),
    }
}

/// Runs a quick command to check that a tool exists and works; returns its stdout.
fn probe(command: &mut Command, tool: &str, hint: &str) -> Result<String, String> {
    match command.output() {
        Ok(output) if output.status.success() => {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        }
        Ok(output) => Err(format!(
            "`{tool}` does not work ({}): {}; {hint}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Err(format!("`{tool}` was not found on PATH; {hint}"))
        }
        Err(e) => Err(format!("cannot run `{tool}`: {e}; {hint}")),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn stamp_matches(path: &Path, expected: &str) -> bool {
    fs::read_to_string(path).is_ok_and(|found| found == expected)
}

fn write_stamp(path: &Path, stamp: &str) -> Result<(), String> {
    fs::write(path, stamp).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// 64-bit FNV-1a over the parts, each followed by a 0xff separator byte.
/// Stable across Rust releases, unlike `DefaultHasher`; not for security.
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for part in parts {
        for &byte in part.iter().chain(std::iter::once(&0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vault-compat-install-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn fnv1a64_matches_the_reference_values() {
        // FNV-1a 64 of "" and "a" (without our separator byte).
        let plain = |bytes: &[u8]| {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for &b in bytes {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
            hash
        };
        assert_eq!(plain(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(plain(b"a"), 0xaf63_dc4c_8601_ec8c);
        // The separator keeps part boundaries significant.
        assert_ne!(fnv1a64(&[b"ab", b"c"]), fnv1a64(&[b"a", b"bc"]));
    }

    #[test]
    fn node_stamp_follows_the_lockfile() {
        let dir = scratch("node");
        fs::write(dir.join("package.json"), "{}").unwrap();
        assert!(node_stamp(&dir).unwrap_err().contains("package-lock.json"));
        fs::write(dir.join("package-lock.json"), "{\"v\":1}").unwrap();
        let first = node_stamp(&dir).unwrap();
        let stamp_path = dir.join(STAMP);
        assert!(!stamp_matches(&stamp_path, &first));
        write_stamp(&stamp_path, &first).unwrap();
        assert!(stamp_matches(&stamp_path, &first));
        fs::write(dir.join("package-lock.json"), "{\"v\":2}").unwrap();
        let second = node_stamp(&dir).unwrap();
        assert_ne!(first, second);
        assert!(!stamp_matches(&stamp_path, &second));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rust_stamp_follows_manifest_lockfile_source_and_cargo() {
        let dir = scratch("rust");
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(dir.join("Cargo.toml"), "[package]").unwrap();
        fs::write(dir.join("src").join("main.rs"), "fn main() {}").unwrap();
        assert!(rust_stamp(&dir, "cargo 1")
            .unwrap_err()
            .contains("Cargo.lock"));
        fs::write(dir.join("Cargo.lock"), "version = 4").unwrap();
        let first = rust_stamp(&dir, "cargo 1").unwrap();
        assert_eq!(first, rust_stamp(&dir, "cargo 1").unwrap());
        assert_ne!(first, rust_stamp(&dir, "cargo 2").unwrap());
        fs::write(dir.join("src").join("main.rs"), "fn main() { }").unwrap();
        let edited = rust_stamp(&dir, "cargo 1").unwrap();
        assert_ne!(first, edited);
        fs::write(dir.join("src").join("extra.rs"), "").unwrap();
        assert_ne!(edited, rust_stamp(&dir, "cargo 1").unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_tool_gets_a_clear_error() {
        let err = probe(
            &mut Command::new("vault-compat-no-such-tool"),
            "vault-compat-no-such-tool",
            "install it",
        )
        .unwrap_err();
        assert!(err.contains("not found on PATH"), "{err}");
        assert!(err.contains("install it"), "{err}");
    }
}
