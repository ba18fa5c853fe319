//! Why a command failed, and the exit code that says so.

use vault::KeyServiceErrorKind as ErrorKind;

/// Exit code: authentication or decryption failure (the input is well
/// formed but the key service or the AEAD refused it).
pub const REFUSED: u8 = 1;
/// Exit code: usage error or bad input.
pub const USAGE: u8 = 2;
/// Exit code: the key service is unreachable or failing (retrying later may
/// help).
pub const UNREACHABLE: u8 = 3;
/// Exit code: this machine failed us: no async runtime, cannot listen,
/// cannot write the output (stdout closed, disk full), cannot read or
/// write the keyring file (no permission, disk full), no randomness.
pub const SYSTEM: u8 = 4;

/// Exit code: `workos-vault migrate` could not convert some records (they were
/// written back unchanged and listed on stderr).
pub const PARTIAL: u8 = 5;
/// Exit code: the object (or its name) does not exist (HTTP 404).
pub const NOT_FOUND: u8 = 6;
/// Exit code: the object's name is taken, or `--version-check` is not the
/// current version any more (HTTP 409).
pub const CONFLICT: u8 = 7;

/// A failed command: the one line for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    /// Bad input or usage ([`USAGE`]).
    pub fn input(message: String) -> Self {
        Failure {
            message,
            code: USAGE,
        }
    }

    /// A failure of the machine rather than of the input ([`SYSTEM`]).
    pub fn system(message: String) -> Self {
        Failure {
            message,
            code: SYSTEM,
        }
    }
}

impl From<vault::Error> for Failure {
    fn from(error: vault::Error) -> Self {
        let code = match &error {
            vault::Error::Decrypt => REFUSED,
            vault::Error::KeyService(e) | vault::Error::InvalidContext(e) => key_service_code(e),
            _ => USAGE,
        };
        Failure {
            message: one_line(&error),
            code,
        }
    }
}

impl From<vault::KeyServiceError> for Failure {
    fn from(error: vault::KeyServiceError) -> Self {
        Failure {
            code: key_service_code(&error),
            message: one_line(&error),
        }
    }
}

fn key_service_code(error: &vault::KeyServiceError) -> u8 {
    if error.kind() == ErrorKind::Keyring && local_io_failure(error) {
        return SYSTEM;
    }
    match error.kind() {
        ErrorKind::Unauthorized | ErrorKind::InvalidKeys => REFUSED,
        ErrorKind::Connect | ErrorKind::Timeout => UNREACHABLE,
        ErrorKind::Api if error.status().is_some_and(|s| s >= 500) => UNREACHABLE,
        ErrorKind::Api | ErrorKind::InvalidResponse => REFUSED,
        ErrorKind::Random | ErrorKind::Encode | ErrorKind::Storage => SYSTEM,
        ErrorKind::NotFound => NOT_FOUND,
        ErrorKind::Conflict => CONFLICT,
        _ => USAGE,
    }
}

/// Whether a keyring error comes from this machine (a full disk, a
/// read-only file system, no permission) rather than from the input or the
/// keyring's content.
fn local_io_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind as Io;
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                Io::PermissionDenied
                    | Io::StorageFull
                    | Io::ReadOnlyFilesystem
                    | Io::QuotaExceeded
                    | Io::ResourceBusy
                    | Io::OutOfMemory
            ) || io.raw_os_error() == Some(28);
        }
        source = cause.source();
    }
    false
}

/// The error and its causes on one line. Each error either quotes its
/// cause or exposes it as its `source()`, never both, so each is shown once.
pub(crate) fn one_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring_error(io: std::io::ErrorKind) -> vault::KeyServiceError {
        vault::KeyServiceError::new(ErrorKind::Keyring, "cannot write keyring file /k.json")
            .with_source(std::io::Error::from(io))
    }

    #[test]
    fn keyring_failures_of_this_machine_are_exit_4_and_of_the_file_exit_2() {
        for io in [
            std::io::ErrorKind::StorageFull,
            std::io::ErrorKind::PermissionDenied,
            std::io::ErrorKind::ReadOnlyFilesystem,
        ] {
            assert_eq!(Failure::from(keyring_error(io)).code, SYSTEM, "{io:?}");
            let wrapped = vault::Error::KeyService(keyring_error(io));
            assert_eq!(Failure::from(wrapped).code, SYSTEM, "{io:?}");
        }
        let missing = vault::KeyServiceError::new(ErrorKind::Keyring, "does not exist");
        assert_eq!(Failure::from(missing).code, USAGE);
        assert_eq!(
            Failure::from(keyring_error(std::io::ErrorKind::InvalidData)).code,
            USAGE
        );
    }

    #[test]
    fn each_cause_is_shown_once_without_dedup() {
        let cause = std::io::Error::other("connection refused");
        let error =
            vault::KeyServiceError::new(ErrorKind::Connect, "could not connect to the key service")
                .with_source(cause);
        let failure = Failure::from(vault::Error::from(error));
        assert_eq!(
            failure.message,
            "could not connect to the key service: connection refused"
        );
        assert_eq!(failure.code, UNREACHABLE);
        let context = Failure::from(vault::Error::from(vault::ContextError::Empty));
        assert!(
            context
                .message
                .starts_with("invalid key context: key context is empty"),
            "{}",
            context.message
        );
        assert_eq!(context.code, USAGE);
    }
}
