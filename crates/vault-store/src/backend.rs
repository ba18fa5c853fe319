//! The two databases: connecting, migrating, and what their SQL does not
//! share.

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::AnyPool;
use sqlx::Executor;
use vault_api::{Error, ErrorKind};

/// How long a SQLite writer waits for another to finish before it fails.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 30_000;

/// Which database a store keeps its objects in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// An SQLite file (bundled SQLite, in WAL mode): the embedded default,
    /// for one process.
    Sqlite,
    /// PostgreSQL: for any number of processes over one database.
    Postgres,
}

impl Backend {
    /// The backend a database URL names: `sqlite:` or `postgres:` /
    /// `postgresql:`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for any other scheme.
    pub fn of_url(url: &str) -> Result<Backend, Error> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme);
        match scheme.map(str::to_ascii_lowercase).as_deref() {
            Some("sqlite") => Ok(Backend::Sqlite),
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            _ => Err(Error::new(
                ErrorKind::Config,
                "the object store's database URL must start with sqlite: (such as \
                 sqlite:///var/lib/vault/objects.db) or postgres:// (such as \
                 postgres://vault@db.internal/vault)",
            )),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The SQL that is true when column `name` contains the text of
    /// parameter `$n`, case-sensitively.
    pub(crate) fn contains(self, param: usize) -> String {
        match self {
            Backend::Sqlite => format!("instr(name, ${param}) > 0"),
            Backend::Postgres => format!("strpos(name, ${param}) > 0"),
        }
    }

    fn migrator(self) -> Migrator {
        let sql = match self {
            Backend::Sqlite => include_str!("../migrations/sqlite/0001_objects.sql"),
            Backend::Postgres => include_str!("../migrations/postgres/0001_objects.sql"),
        };
        let migrations = vec![Migration::new(
            1,
            Cow::Borrowed("objects"),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )];
        Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        }
    }
}

/// The `sqlite://` URL of a file (percent-encoded, absolute), created when
/// the store opens.
pub fn sqlite_url(path: &Path) -> Result<String, Error> {
    let absolute = std::path::absolute(path).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("cannot resolve the object store path {}", path.display()),
        )
        .with_source(e)
    })?;
    let text = absolute.to_str().ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            "the object store path is not UTF-8; choose another path",
        )
    })?;
    let mut url = String::from("sqlite://");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'.' | b'_' | b'~') {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

/// Connects a pool of at most `max_connections` and brings the schema up
/// to date.
pub(crate) async fn connect(
    url: &str,
    backend: Backend,
    max_connections: u32,
) -> Result<AnyPool, Error> {
    sqlx::any::install_default_drivers();
    let mut options = AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30));
    if backend == Backend::Sqlite {
        options = options.after_connect(|connection, _| {
            Box::pin(async move {
                // WAL: readers do not block the writer; FULL sync: an
                // acknowledged write survives a crash of the machine too.
                connection
                    .execute(&*format!(
                        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                         PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON;"
                    ))
                    .await?;
                Ok(())
            })
        });
    }
    let pool = options.connect(url).await.map_err(|e| {
        Error::new(
            ErrorKind::Storage,
            format!(
                "cannot open the object store's {} database",
                backend.as_str()
            ),
        )
        .with_source(e)
    })?;
    backend.migrator().run(&pool).await.map_err(|e| {
        Error::new(
            ErrorKind::Storage,
            "cannot bring the object store's schema up to date",
        )
        .with_source(e)
    })?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(Backend::of_url("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("POSTGRES://u@h/db").unwrap(),
            Backend::Postgres
        );
        let error = Backend::of_url("mysql://u@h/db").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(error.message().contains("postgres://"));
        let url = sqlite_url(Path::new("/tmp/a b/objects.db")).unwrap();
        assert_eq!(url, "sqlite:///tmp/a%20b/objects.db?mode=rwc");
    }
}
