//! Why a command failed, and the exit code that says so.

use vault::ErrorKind;

/// Exit code: authentication or decryption failure (the input is well
/// formed but the key service or the AEAD refused it).
pub const REFUSED: u8 = 1;
/// Exit code: usage error or bad input.
pub const USAGE: u8 = 2;
/// Exit code: the key service is unreachable or failing (retrying later may
/// help).
pub const UNREACHABLE: u8 = 3;
/// Exit code: this machine failed us: no async runtime, cannot listen,
/// cannot write the output, no randomness.
pub const SYSTEM: u8 = 4;

/// Exit code: the object (or its name) does not exist (HTTP 404).
pub const NOT_FOUND: u8 = 5;
/// Exit code: the object's name is taken, or `--version-check` is not the
/// current version any more (HTTP 409).
pub const CONFLICT: u8 = 6;

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
            vault::Error::KeyService(e) => key_service_code(e),
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

/// The error and its causes on one line, skipping causes already quoted.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}
