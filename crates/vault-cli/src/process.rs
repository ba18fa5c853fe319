//! The process around the commands: hardening at start, the tracing
//! subscriber, and what stdout is.

/// Disables core dumps (`RLIMIT_CORE` 0) and ptrace attach and
/// `/proc/<pid>/mem` reads by other processes of the same user
/// (`PR_SET_DUMPABLE` 0), as ssh-agent and HashiCorp Vault do: a core
/// dump of `workos-vault serve` would hold master and data keys. Best effort: a
/// failure is logged, not fatal.
pub fn harden() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{
            set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit,
        };
        let none = Rlimit {
            current: Some(0),
            maximum: Some(0),
        };
        if let Err(e) = setrlimit(Resource::Core, none) {
            crate::note(&format!("workos-vault: cannot disable core dumps: {e}"));
        }
        if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
            crate::note(&format!("workos-vault: cannot disable ptrace attach: {e}"));
        }
    }
}

/// Logs to stderr as `RUST_LOG` says (`RUST_LOG=info` shows the backend
/// chosen, `debug` the key service's retries); warnings only by default.
/// A line stderr cannot take is dropped.
pub fn install_tracing() {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| QuietStderr)
        .with_ansi(false)
        .try_init();
}

/// stderr, ignoring write errors.
struct QuietStderr;

impl std::io::Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether the shell started us with stdout closed (`>&-`). Rust's runtime
/// then opens `/dev/null` on fd 1, read-write, before `main`; a shell's
/// `>/dev/null` opens it write-only. So `/dev/null` opened read-write on
/// fd 1 means the output would be lost without anyone asking for that.
/// A parent that hands its child `/dev/null` read-write (Python's
/// `subprocess.DEVNULL`, libuv's "ignore") looks the same: for the commands
/// whose output is their result, it is refused too (README says so).
#[cfg(unix)]
pub fn stdout_was_closed() -> bool {
    use rustix::fs::{fcntl_getfl, fstat, stat, FileType, OFlags};
    let stdout = std::io::stdout();
    let Ok(flags) = fcntl_getfl(&stdout) else {
        return false;
    };
    if flags & OFlags::RWMODE != OFlags::RDWR {
        return false;
    }
    match (fstat(&stdout), stat("/dev/null")) {
        (Ok(ours), Ok(null)) => {
            FileType::from_raw_mode(ours.st_mode) == FileType::CharacterDevice
                && ours.st_rdev == null.st_rdev
        }
        _ => false,
    }
}

#[cfg(not(unix))]
pub fn stdout_was_closed() -> bool {
    false
}
