//! The `vault` command fails closed: no keyring made by a command that
//! only unwraps, no blank variable taken for unset, no unbounded input, no
//! exit code that hides a lost output, no secret on the command line.

#![allow(clippy::unwrap_used)] // Test helpers panic on purpose.
#![cfg(unix)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use assert_cmd::Command;

/// The stderr line of a command that created the keyring.
const BACK_IT_UP: &str = "back it up: what it encrypts cannot be decrypted without it";

/// A fresh HOME with no keyring and no backend variable.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Where the CLI keeps the keyring when nothing names one.
    fn default_keyring(&self) -> PathBuf {
        self.dir.path().join(".local/share/vault-rs/keyring.json")
    }

    fn vault(&self) -> Command {
        let mut command = Command::cargo_bin("workos-vault").unwrap();
        command
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        command
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.vault().args(args).write_stdin(stdin).output().unwrap()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn only_commands_that_mint_keys_create_the_keyring_and_they_say_so_once() {
    let home = Home::new();
    let keyring = home.default_keyring();
    let path = keyring.display().to_string();

    // A ciphertext from another keyring, so decrypt and rekey get well
    // formed input and fail on the keyring alone.
    let other = Home::new();
    let ciphertext = other.run(&["encrypt", "-c", "org=o"], b"x").stdout;
    assert!(!ciphertext.is_empty());

    let keys = {
        let inspected = home.run(&["inspect"], &ciphertext);
        assert!(inspected.status.success(), "inspect needs no keyring");
        let info: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
        info["encrypted_keys"].as_str().unwrap().to_owned()
    };
    for (args, stdin) in [
        (&["decrypt"][..], &ciphertext[..]),
        (&["rekey", "-c", "org=p"][..], &ciphertext[..]),
        (&["data-key", "decrypt", &keys][..], &b""[..]),
        (&["keyring", "show"][..], &b""[..]),
        (&["keyring", "rotate"][..], &b""[..]),
    ] {
        let output = home.run(args, stdin);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.contains(&path) && text.contains("does not exist"),
            "{args:?}: {text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(output.stdout.is_empty());
        assert!(!keyring.exists(), "{args:?} created the keyring");
        assert!(
            !keyring.parent().unwrap().exists(),
            "{args:?} made its directory"
        );
    }

    // The first command that mints a key creates it, and says so in one line.
    let output = home.run(&["encrypt", "-c", "org=o"], b"secret");
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(&path) && text.contains(BACK_IT_UP), "{text}");
    assert!(keyring.exists());
    // Later ones find it and say nothing.
    let again = home.run(&["data-key", "create", "-c", "org=o"], b"");
    assert!(
        again.status.success() && again.stderr.is_empty(),
        "{}",
        stderr(&again)
    );
    let decrypted = home.run(&["decrypt"], &output.stdout);
    assert_eq!(decrypted.stdout, b"secret", "{}", stderr(&decrypted));

    // data-key create and keyring init create it too, in a fresh HOME.
    for args in [
        &["data-key", "create", "-c", "org=o"][..],
        &["keyring", "init"][..],
    ] {
        let home = Home::new();
        let output = home.run(args, b"");
        let text = stderr(&output);
        assert!(output.status.success(), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(BACK_IT_UP), "{text}");
        assert!(home.default_keyring().exists(), "{args:?}");
    }
}

#[test]
fn the_readme_pipeline_works_in_a_fresh_home_without_a_keyring_variable() {
    let home = Home::new();
    let binary = assert_cmd::cargo::cargo_bin("workos-vault");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo 'hello' | '{0}' encrypt -c organization_id=org_123 | '{0}' decrypt",
            binary.display()
        ))
        .env_clear()
        .env("HOME", home.dir.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(output.stdout, b"hello\n");
    assert!(stderr(&output).contains(BACK_IT_UP));
}

#[test]
fn set_but_blank_variables_are_errors_not_unset() {
    for (name, value) in [
        ("WORKOS_API_KEY", ""),
        ("WORKOS_API_KEY", "  "),
        ("WORKOS_BASE_URL", " "),
        ("WORKOS_VAULT_TRANSIT_KEY", ""),
        ("WORKOS_VAULT_TRANSIT_KEY", "\t"),
        ("WORKOS_VAULT_KEYRING", ""),
        ("WORKOS_VAULT_KEYRING", " "),
    ] {
        let home = Home::new();
        for args in [&["encrypt", "-c", "org=o"][..], &["keyring", "init"][..]] {
            if name != "WORKOS_VAULT_KEYRING" && args[0] == "keyring" {
                continue;
            }
            let output = home
                .vault()
                .env(name, value)
                .args(args)
                .write_stdin("x")
                .output()
                .unwrap();
            let text = stderr(&output);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{name}={value:?} {args:?}: {text}"
            );
            assert!(text.contains(&format!("{name} is set but empty")), "{text}");
            assert!(output.stdout.is_empty());
            assert!(
                !home.default_keyring().exists(),
                "{name}={value:?} made a keyring"
            );
        }
    }
}

#[test]
fn duplicate_context_names_are_refused() {
    let home = Home::new();
    for args in [
        &["encrypt", "-c", "a=b", "-c", "a=c"][..],
        &["data-key", "create", "-c", "a=b", "-c", "a=b"][..],
        &["rekey", "-c", "org=x", "-c", "org=y"][..],
    ] {
        let output = home.run(args, b"x");
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains("given twice"), "{text}");
        assert!(!home.default_keyring().exists());
    }
}

/// Runs `vault ARGS` with `len` bytes of `byte` piped to stdin by a thread
/// (the pipe is not a file: its size is unknown).
fn run_with_piped_input(home: &Home, args: &[&str], byte: u8, len: usize) -> Output {
    let binary = assert_cmd::cargo::cargo_bin("workos-vault");
    let mut child = std::process::Command::new(binary)
        .args(args)
        .env_clear()
        .env("HOME", home.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        // The command stops reading past its limit: a broken pipe is fine.
        let _ = stdin.write_all(&vec![byte; len]);
    });
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    output
}

#[test]
fn unsized_input_past_the_limit_is_refused_before_any_output() {
    let home = Home::new();
    home.run(&["keyring", "init"], b"");
    for args in [
        &["encrypt", "-c", "org=o"][..],
        &["decrypt"][..],
        &["inspect"][..],
        &["rekey", "-c", "org=o"][..],
    ] {
        let mut args = args.to_vec();
        args.extend(["--max-input-bytes", "4096"]);
        let output = run_with_piped_input(&home, &args, b'A', 64 << 10);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains("more than 4096 bytes"), "{text}");
        assert!(text.contains("--max-input-bytes"), "{text}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    // Under the limit, a pipe works as before.
    let output = run_with_piped_input(
        &home,
        &["encrypt", "-c", "org=o", "--max-input-bytes", "4096"],
        b'A',
        4096,
    );
    assert!(output.status.success(), "{}", stderr(&output));

    // A character device and a FIFO named as FILE are unsized too.
    let fifo = home.dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let _ = file.write_all(&vec![b'A'; 64 << 10]);
        })
    };
    for file in [Path::new("/dev/zero"), fifo.as_path()] {
        let output = home.run(
            &[
                "encrypt",
                "-c",
                "org=o",
                "--max-input-bytes",
                "4096",
                file.to_str().unwrap(),
            ],
            b"",
        );
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{file:?}: {text}");
        assert!(text.contains("more than 4096 bytes"), "{text}");
        assert!(output.stdout.is_empty());
    }
    writer.join().unwrap();
}

#[test]
fn a_closed_stdout_is_exit_4_and_dev_null_is_not() {
    let home = Home::new();
    home.run(&["keyring", "init"], b"");
    let binary = assert_cmd::cargo::cargo_bin("workos-vault");
    let run = |redirect: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo x | '{}' encrypt -c org=o {redirect}",
                binary.display()
            ))
            .env_clear()
            .env("HOME", home.dir.path())
            .output()
            .unwrap()
    };
    let closed = run(">&-");
    let text = stderr(&closed);
    assert_eq!(closed.status.code(), Some(4), "{text}");
    assert!(text.contains("stdout is closed"), "{text}");
    let discarded = run(">/dev/null");
    assert_eq!(discarded.status.code(), Some(0), "{}", stderr(&discarded));
}

#[test]
fn a_full_stderr_never_panics() {
    let home = Home::new();
    let input = home.dir.path().join("input");
    std::fs::write(&input, "x").unwrap();
    let run = |args: &[&str], log: &str| {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        std::process::Command::new(assert_cmd::cargo::cargo_bin("workos-vault"))
            .args(args)
            .arg(&input)
            .env_clear()
            .env("HOME", home.dir.path())
            .env("RUST_LOG", log)
            .stdin(Stdio::null())
            .stderr(full)
            .output()
            .unwrap()
    };
    let failed = run(&["encrypt", "-c", "no-equals-sign"], "off");
    assert_eq!(
        failed.status.code(),
        Some(2),
        "not 101: a failed diagnostic is not a panic"
    );
    // The keyring is created (a line on stderr) and everything is logged.
    let logged = run(&["encrypt", "-c", "org=o"], "trace");
    assert_eq!(logged.status.code(), Some(0));
    assert!(!logged.stdout.is_empty());
}

#[test]
fn rust_log_shows_the_backend_chosen() {
    let home = Home::new();
    let output = home
        .vault()
        .env("RUST_LOG", "info")
        .args(["encrypt", "-c", "org=o"])
        .write_stdin("x")
        .output()
        .unwrap();
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("vault key service chosen"), "{text}");
    assert!(text.contains("backend=\"local\""), "{text}");

    // And the key service's retries (nothing listens on port 9).
    let output = home
        .vault()
        .env("RUST_LOG", "info")
        .env("WORKOS_API_KEY", "sk_test_retried_0123")
        .env("WORKOS_BASE_URL", "http://127.0.0.1:9")
        .args(["data-key", "create", "-c", "org=o"])
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(text.contains("backend=\"workos\""), "{text}");
    assert!(
        text.contains("retrying the call of the key service"),
        "{text}"
    );
    assert!(!text.contains("sk_test_retried"), "{text}");
}

#[test]
fn a_damaged_keyring_is_exit_2_naming_the_version_and_never_rewritten() {
    let home = Home::new();
    let ciphertext = home.run(&["encrypt", "-c", "org=o"], b"x").stdout;
    let keyring = home.default_keyring();
    let text = std::fs::read_to_string(&keyring).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let key = json["keys"][0]["key"].as_str().unwrap();
    let mut damaged_key = key.as_bytes().to_vec();
    damaged_key[3] = if damaged_key[3] == b'A' { b'B' } else { b'A' };
    let damaged = text.replace(key, std::str::from_utf8(&damaged_key).unwrap());
    std::fs::write(&keyring, &damaged).unwrap();
    for (args, stdin) in [
        (&["encrypt", "-c", "org=o"][..], &b"y"[..]),
        (&["decrypt"][..], &ciphertext[..]),
        (&["keyring", "rotate"][..], &b""[..]),
    ] {
        let output = home.run(args, stdin);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.contains("master key version 1 does not match its check value"),
            "{text}"
        );
        assert!(output.stdout.is_empty());
    }
    assert_eq!(std::fs::read_to_string(&keyring).unwrap(), damaged);
}

#[test]
fn secrets_are_never_arguments() {
    let home = Home::new();
    let created = home.run(&["data-key", "create", "-c", "org=o"], b"");
    let pair: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let data_key = pair["data_key"].as_str().unwrap();
    let ciphertext = home.run(&["encrypt", "-c", "org=o"], b"offline").stdout;

    // The argument forms are gone.
    let output = home.run(&["decrypt", "--data-key", data_key], &ciphertext);
    assert_eq!(output.status.code(), Some(2));
    let output = home.run(&["serve", "--api-key", "sk_test_0123456789abcdef"], b"");
    assert_eq!(output.status.code(), Some(2));

    // --help names the file flags and never a value.
    let help = home
        .vault()
        .env("WORKOS_VAULT_DATA_KEY", data_key)
        .args(["decrypt", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        help.contains("--data-key-file") && !help.contains(data_key),
        "{help}"
    );
    let help = home.vault().args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8(help.stdout)
        .unwrap()
        .contains("--api-keys-file"));
}

/// Whether the tests run as root, who may read any process's memory
/// unless it drops its capabilities.
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    uid.split_whitespace().nth(2) == Some("0")
}

/// `program`, without capabilities when run as root (`setpriv`), so that
/// reading another process's /proc files obeys its dumpable flag.
fn without_capabilities(program: &Path) -> std::process::Command {
    if is_root() {
        let mut command = std::process::Command::new("setpriv");
        command
            .args(["--bounding-set=-all", "--inh-caps=-all"])
            .arg(program);
        command
    } else {
        std::process::Command::new(program)
    }
}

/// Whether a process without capabilities may read `/proc/<pid>/environ`:
/// refused for a process that is not dumpable (what ptrace attach needs).
fn environ_readable(pid: u32) -> bool {
    without_capabilities(Path::new("cat"))
        .arg(format!("/proc/{pid}/environ"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn core_dumps_and_ptrace_are_off_in_a_running_server() {
    if is_root()
        && std::process::Command::new("setpriv")
            .arg("--help")
            .output()
            .is_err()
    {
        eprintln!("SKIPPED: setpriv (util-linux) is not installed");
        return;
    }
    // The check itself: a process like the server but dumpable is readable.
    let mut control = without_capabilities(Path::new("sh"))
        .args(["-c", "echo ready; read line"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(control.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    let control_readable = environ_readable(control.id());
    drop(control.stdin.take());
    control.wait().unwrap();
    assert!(control_readable, "a dumpable process is readable");

    let home = Home::new();
    let mut child = without_capabilities(&assert_cmd::cargo::cargo_bin("workos-vault"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("HOME", home.dir.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("WORKOS_VAULT_SERVER_API_KEY", "sk_test_0123456789abcdef")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it serves, it has long hardened itself (first thing in main).
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("serving WorkOS key endpoints") {
        line.clear();
        assert_ne!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap(),
            0
        );
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let server_readable = environ_readable(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(fields[4..6], ["0", "0"], "{core}");
    assert!(
        !server_readable,
        "workos-vault serve is not dumpable: no ptrace, no /proc reads"
    );
}

#[test]
fn plain_http_to_a_host_that_is_not_loopback_needs_an_opt_in() {
    let home = Home::new();
    let run = |allow: Option<&str>| {
        let mut command = home.vault();
        command
            .env("WORKOS_API_KEY", "sk_test_in_clear_0123")
            // Not loopback by address, though nothing leaves the machine:
            // connecting to 0.0.0.0 reaches this host.
            .env("WORKOS_BASE_URL", "http://0.0.0.0:9")
            .args(["data-key", "create", "-c", "org=o"]);
        if let Some(allow) = allow {
            command.env("WORKOS_VAULT_ALLOW_INSECURE_HTTP", allow);
        }
        command.output().unwrap()
    };
    let refused = run(None);
    let text = stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{text}");
    assert!(text.contains("in clear"), "{text}");
    assert!(
        text.contains("WORKOS_VAULT_ALLOW_INSECURE_HTTP=1"),
        "{text}"
    );
    assert!(!text.contains("sk_test_in_clear"), "{text}");
    // Allowed, it gets as far as the network: nothing listens, exit 3.
    let allowed = run(Some("1"));
    assert_eq!(allowed.status.code(), Some(3), "{}", stderr(&allowed));
}

#[test]
fn decrypt_takes_its_offline_data_key_from_a_file_or_the_environment() {
    let home = Home::new();
    let ciphertext = home
        .run(&["encrypt", "-c", "org=o", "--aad", "r"], b"offline")
        .stdout;
    let info: serde_json::Value =
        serde_json::from_slice(&home.run(&["inspect"], &ciphertext).stdout).unwrap();
    let keys = info["encrypted_keys"].as_str().unwrap();
    let key: serde_json::Value =
        serde_json::from_slice(&home.run(&["data-key", "decrypt", keys], b"").stdout).unwrap();
    let data_key = key["data_key"].as_str().unwrap();
    let file = home.dir.path().join("data.key");
    std::fs::write(&file, format!("{data_key}\n")).unwrap();
    // Offline: the keyring is gone, so only the given key can open it.
    std::fs::remove_file(home.default_keyring()).unwrap();

    let from_file = home.run(
        &[
            "decrypt",
            "--aad",
            "r",
            "--data-key-file",
            file.to_str().unwrap(),
        ],
        &ciphertext,
    );
    assert_eq!(from_file.stdout, b"offline", "{}", stderr(&from_file));
    let from_env = home
        .vault()
        .env("WORKOS_VAULT_DATA_KEY", data_key)
        .args(["decrypt", "--aad", "r"])
        .write_stdin(ciphertext.clone())
        .output()
        .unwrap();
    assert_eq!(from_env.stdout, b"offline", "{}", stderr(&from_env));
    let both = home
        .vault()
        .env("WORKOS_VAULT_DATA_KEY", data_key)
        .args(["decrypt", "--data-key-file", file.to_str().unwrap()])
        .write_stdin(ciphertext)
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
    assert!(!stderr(&both).contains(data_key));
}

#[test]
fn keyring_commands_may_discard_their_description_even_with_a_closed_stdout() {
    let home = Home::new();
    let binary = assert_cmd::cargo::cargo_bin("workos-vault");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("'{}' keyring init >&-", binary.display()))
        .env_clear()
        .env("HOME", home.dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(home.default_keyring().exists());
}
