//! Configuration from the environment.
//!
//! Two families of variables meet here, and their names clash: this
//! project is called *vault*, and HashiCorp's engine reads `VAULT_*`.
//!
//! - **This project's**: [`KEY_VAR`] (`WORKOS_VAULT_TRANSIT_KEY`) selects Transit
//!   and names the key; [`MOUNT_VAR`] and [`TOKEN_FILE_VAR`]. Nothing else
//!   selects Transit: `VAULT_ADDR` or `VAULT_TOKEN` alone change nothing.
//! - **The engine's own** (as the `vault` and `bao` CLIs read them):
//!   `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`, `VAULT_CACERT`,
//!   `VAULT_CLIENT_TIMEOUT`, `VAULT_MAX_RETRIES`, each also read as
//!   OpenBao's `BAO_*`. When both are set they must agree.

use std::path::PathBuf;
use std::time::Duration;

use vault_api::Error;

use crate::builder::config;
use crate::TransitKeyServiceBuilder;

/// `WORKOS_VAULT_TRANSIT_KEY` (this project's): use Transit, with this key.
pub const KEY_VAR: &str = "WORKOS_VAULT_TRANSIT_KEY";
/// `WORKOS_VAULT_TRANSIT_MOUNT` (this project's): the engine's mount path.
pub const MOUNT_VAR: &str = "WORKOS_VAULT_TRANSIT_MOUNT";
/// `WORKOS_VAULT_TRANSIT_TOKEN_FILE` (this project's): a file with the token.
pub const TOKEN_FILE_VAR: &str = "WORKOS_VAULT_TRANSIT_TOKEN_FILE";

/// The engine's variables: HashiCorp's name, then OpenBao's.
const ADDR: [&str; 2] = ["VAULT_ADDR", "BAO_ADDR"];
const TOKEN: [&str; 2] = ["VAULT_TOKEN", "BAO_TOKEN"];
const NAMESPACE: [&str; 2] = ["VAULT_NAMESPACE", "BAO_NAMESPACE"];
const CACERT: [&str; 2] = ["VAULT_CACERT", "BAO_CACERT"];
const TIMEOUT: [&str; 2] = ["VAULT_CLIENT_TIMEOUT", "BAO_CLIENT_TIMEOUT"];
const MAX_RETRIES: [&str; 2] = ["VAULT_MAX_RETRIES", "BAO_MAX_RETRIES"];

impl TransitKeyServiceBuilder {
    /// A builder from the environment, or `None` when `WORKOS_VAULT_TRANSIT_KEY`
    /// is unset (Transit is not selected). See the crate docs for every
    /// variable. The token is the first of: `VAULT_TOKEN`/`BAO_TOKEN`, the
    /// file named by `WORKOS_VAULT_TRANSIT_TOKEN_FILE`, `~/.vault-token` (what
    /// `vault login` and `bao login` write).
    pub fn from_env() -> Result<Option<Self>, Error> {
        from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over another source of variables:
    /// `lookup` is asked for the same names (`WORKOS_VAULT_TRANSIT_KEY`,
    /// `VAULT_ADDR`, ...) and answers `None` for an unset one. `vault
    /// migrate --to-service` reads its target's variables this way.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        from_lookup(lookup)
    }
}

/// [`TransitKeyServiceBuilder::from_env`] over any variable lookup.
pub(crate) fn from_lookup(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<TransitKeyServiceBuilder>, Error> {
    // This project's variables set but blank are errors, never "unset": a
    // deploy that meant to choose Transit must not fall back to another
    // key service.
    for name in [KEY_VAR, MOUNT_VAR, TOKEN_FILE_VAR] {
        if get(name).is_some_and(|v| v.trim().is_empty()) {
            return Err(config(&format!(
                "{name} is set but empty; set it to a value or unset it"
            )));
        }
    }
    let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
    let Some(key) = get(KEY_VAR) else {
        return Ok(None);
    };
    // A clash names the variables, never their values (one may be a token).
    let pair = |names: [&str; 2]| -> Result<Option<String>, Error> {
        match (get(names[0]), get(names[1])) {
            (Some(a), Some(b)) if a.trim() != b.trim() => Err(config(&format!(
                "{} and {} are both set, to different values; unset one",
                names[0], names[1]
            ))),
            (a, b) => Ok(a.or(b).map(|v| v.trim().to_owned())),
        }
    };
    let mut builder = TransitKeyServiceBuilder::new().key(key.trim());
    builder.address = pair(ADDR)?;
    if let Some(mount) = get(MOUNT_VAR) {
        builder = builder.mount(mount.trim());
    }
    if let Some(namespace) = pair(NAMESPACE)? {
        builder = builder.namespace(namespace);
    }
    if let Some(ca) = pair(CACERT)? {
        builder = builder.ca_file(ca);
    }
    if let Some(text) = pair(TIMEOUT)? {
        let timeout = parse_duration(&text).ok_or_else(|| {
            config(&format!(
                "{} must be a duration such as 30s, got {text:?}",
                TIMEOUT[0]
            ))
        })?;
        builder = builder.timeout(timeout);
    }
    if let Some(text) = pair(MAX_RETRIES)? {
        let retries = text.parse().map_err(|_| {
            config(&format!(
                "{} must be a whole number, got {text:?}",
                MAX_RETRIES[0]
            ))
        })?;
        builder = builder.max_retries(retries);
    }
    match pair(TOKEN)? {
        Some(token) => builder = builder.token(token),
        None => {
            let file = get(TOKEN_FILE_VAR)
                .map(PathBuf::from)
                .or_else(|| get("HOME").map(|home| PathBuf::from(home).join(".vault-token")));
            if let Some(file) = file {
                builder = builder.token_file(file);
            }
        }
    }
    Ok(Some(builder))
}

/// `30`, `30s`, `500ms` or `2m`, as the engine's CLI accepts them.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    };
    (!duration.is_zero()).then_some(duration)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> Result<Option<TransitKeyServiceBuilder>, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn only_the_key_variable_selects_transit() {
        let engine_only = [
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "s.t"),
        ];
        assert!(lookup(&engine_only).unwrap().is_none());
        let chosen = lookup(&[
            ("WORKOS_VAULT_TRANSIT_KEY", "dek"),
            ("BAO_ADDR", "http://127.0.0.1:8200"),
            ("BAO_TOKEN", "s.secret"),
            ("VAULT_NAMESPACE", "team"),
            ("WORKOS_VAULT_TRANSIT_MOUNT", "kms"),
            ("VAULT_CLIENT_TIMEOUT", "5s"),
            ("BAO_MAX_RETRIES", "1"),
        ]);
        let service = chosen.unwrap().unwrap().build().unwrap();
        assert_eq!(service.key_name(), "dek");
        assert_eq!(service.mount(), "kms");
        assert_eq!(service.address(), "http://127.0.0.1:8200");
        let debug = format!("{service:?}");
        assert!(
            debug.contains("5s") && debug.contains("max_retries: 1"),
            "{debug}"
        );
        assert!(!debug.contains("s.secret"), "{debug}");
    }

    #[test]
    fn both_families_must_agree_and_values_are_checked() {
        let clash = lookup(&[
            ("WORKOS_VAULT_TRANSIT_KEY", "dek"),
            ("VAULT_TOKEN", "s.one"),
            ("BAO_TOKEN", "s.two"),
        ]);
        let error = clash.err().unwrap();
        assert!(
            error.to_string().contains("VAULT_TOKEN and BAO_TOKEN"),
            "{error}"
        );
        assert!(!error.to_string().contains("s.one"), "{error}");
        let agree = [
            ("WORKOS_VAULT_TRANSIT_KEY", "k"),
            ("VAULT_ADDR", "http://h"),
            ("BAO_ADDR", "http://h/"),
        ];
        assert!(lookup(&agree).is_err(), "different text is a clash");
        assert!(lookup(&[
            ("WORKOS_VAULT_TRANSIT_KEY", "k"),
            ("VAULT_CLIENT_TIMEOUT", "soon")
        ])
        .is_err());
        assert!(lookup(&[
            ("WORKOS_VAULT_TRANSIT_KEY", "k"),
            ("VAULT_MAX_RETRIES", "-1")
        ])
        .is_err());
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("0"), None);
    }

    #[test]
    fn blank_variables_of_this_project_are_errors_not_unset() {
        for name in [KEY_VAR, MOUNT_VAR, TOKEN_FILE_VAR] {
            let mut vars = vec![
                ("WORKOS_VAULT_TRANSIT_KEY", "k"),
                ("VAULT_ADDR", "http://h"),
            ];
            vars.retain(|(n, _)| *n != name);
            vars.push((name, " "));
            let error = lookup(&vars).err().unwrap();
            assert!(
                error
                    .to_string()
                    .contains(&format!("{name} is set but empty")),
                "{error}"
            );
        }
        assert!(lookup(&[("VAULT_ADDR", "")]).unwrap().is_none());
    }

    #[test]
    fn the_token_falls_back_to_the_token_file() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join(".vault-token");
        std::fs::write(&token_file, "s.home\n").unwrap();
        let set_mode = |mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        set_mode(0o644);
        let vars = [
            ("WORKOS_VAULT_TRANSIT_KEY", "k"),
            ("VAULT_ADDR", "http://h"),
            ("HOME", dir.path().to_str().unwrap()),
        ];
        let error = lookup(&vars).unwrap().unwrap().build().unwrap_err();
        assert!(error.to_string().contains("every user may read"), "{error}");
        assert!(error.to_string().contains("chmod 600"), "{error}");
        set_mode(0o600);
        let home = dir.path().to_str().unwrap();
        let vars = [
            ("WORKOS_VAULT_TRANSIT_KEY", "k"),
            ("VAULT_ADDR", "http://h"),
            ("HOME", home),
        ];
        lookup(&vars).unwrap().unwrap().build().unwrap();
        let missing = dir.path().join("nope");
        let vars = [
            ("WORKOS_VAULT_TRANSIT_KEY", "k"),
            ("VAULT_ADDR", "http://h"),
            ("WORKOS_VAULT_TRANSIT_TOKEN_FILE", missing.to_str().unwrap()),
            ("HOME", home),
        ];
        let error = lookup(&vars).unwrap().unwrap().build().unwrap_err();
        assert!(error.to_string().contains("nope"), "{error}");
    }
}
