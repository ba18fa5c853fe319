//! [`ObjectStore`]: the objects API over SQL.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ring::rand::SystemRandom;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::AnyPool;
use sqlx::{Any, Row};
use vault_api::object::{
    Actor, CreateObjectRequest, DeleteObjectResponse, ListMetadata, ListObjectsOptions, Object,
    ObjectList, ObjectMetadata, ObjectService, ObjectSummary, ObjectVersion, ObjectWithoutValue,
    Order, UpdateObjectRequest, VersionList, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT,
};
use vault_api::wire::SecretString;
use vault_api::{
    CacheConfig, CachingKeyService, Error, ErrorKind, KeyContext, KeyService, ReusePolicy,
};

use crate::backend::{self, Backend};
use crate::ids::{self, Cursor, OBJECT_ID_PREFIX, VERSION_ID_PREFIX};
use crate::seal;
use crate::time::{format_rfc3339, now_micros, parse_js_date, parse_rfc3339};

/// The largest value the store keeps: 512 KiB of UTF-8. A request that
/// carries it, JSON-escaped, still fits `vault-server`'s 1 MiB body limit
/// (unless it is mostly control characters), and so does the answer that
/// returns it within the HTTP client's 1 MiB response limit.
pub const MAX_VALUE_BYTES: usize = 512 * 1024;

/// The settings of an [`ObjectStore`] beyond its database and key service.
///
/// ```
/// use vault_store::StoreOptions;
///
/// let options = StoreOptions::new()
///     .environment_id("environment_staging")
///     .max_connections(16);
/// assert_eq!(options.get_max_connections(), 16);
/// ```
#[derive(Debug, Clone)]
pub struct StoreOptions {
    environment_id: String,
    actor: Actor,
    max_connections: Option<u32>,
    reuse: ReusePolicy,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            environment_id: "environment_local".to_owned(),
            actor: Actor {
                id: "local".to_owned(),
                name: "vault-store".to_owned(),
            },
            max_connections: None,
            reuse: default_reuse_policy(),
        }
    }
}

/// How long, and for how much, one data key seals values under one key
/// context: 60 seconds, 10,000 values, 1 GiB.
///
/// Why this is safe: every value gets a fresh random 96-bit nonce, and
/// 10,000 messages is far below AES-GCM's limit for random nonces (2^32
/// per key); each envelope carries its own wrapped key and AAD, so reads
/// never depend on the cache; and keys are reused only under the exact
/// same context. What it costs: a memory disclosure within the minute
/// exposes the values sealed under a cached key, and values written in the
/// same minute share one `encrypted_keys`.
pub fn default_reuse_policy() -> ReusePolicy {
    ReusePolicy::default()
        .with_max_age(Duration::from_secs(60))
        .with_max_messages(10_000)
        .with_max_bytes(1 << 30)
}

impl StoreOptions {
    /// The defaults: environment `environment_local`, actor `local`, 4
    /// connections for SQLite and 16 for PostgreSQL, and
    /// [`default_reuse_policy`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The `environment_id` objects report.
    pub fn environment_id(mut self, id: impl Into<String>) -> Self {
        self.environment_id = id.into();
        self
    }

    /// Who objects report as `updated_by`.
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    /// The most database connections the store holds.
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.max_connections = Some(connections.max(1));
        self
    }

    /// See [`StoreOptions::max_connections`] (`0` until set: the backend's
    /// default).
    pub fn get_max_connections(&self) -> u32 {
        self.max_connections.unwrap_or(0)
    }

    /// How data keys are reused for values; see [`default_reuse_policy`].
    pub fn reuse_policy(mut self, policy: ReusePolicy) -> Self {
        self.reuse = policy;
        self
    }
}

/// An [`ObjectService`] that keeps objects in SQLite or PostgreSQL and
/// encrypts every value through a [`KeyService`].
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct ObjectStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    keys: Arc<dyn KeyService>,
    options: StoreOptions,
    rng: SystemRandom,
}

impl fmt::Debug for ObjectStore {
    /// The backend and the key service; never the URL (it may hold a
    /// password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStore")
            .field("backend", &self.inner.backend)
            .field("environment_id", &self.inner.options.environment_id)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

/// One object row, with its current version's key id and maybe envelope.
struct Current {
    id: String,
    name: String,
    context: KeyContext,
    version_id: String,
    updated_at: i64,
    updated_by: Actor,
    key_id: String,
    envelope: Option<Vec<u8>>,
}

const CURRENT_COLUMNS: &str = "o.id, o.name, o.key_context, o.current_version_id, o.updated_at, \
     o.updated_by_id, o.updated_by_name, v.key_id";

impl ObjectStore {
    /// Opens the store at a database URL (`sqlite://...` or
    /// `postgres://...`), creating the SQLite file and the schema as
    /// needed, with the default [`StoreOptions`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), vault_api::Error> {
    /// use std::sync::Arc;
    /// use vault_api::object::{CreateObjectRequest, ObjectName, ObjectService};
    /// use vault_api::KeyContext;
    /// use vault_local::LocalKeyService;
    /// use vault_store::ObjectStore;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let keys = Arc::new(LocalKeyService::ephemeral());
    /// let store = ObjectStore::open_sqlite(&dir.path().join("objects.db"), keys).await?;
    /// let context = KeyContext::new().with("organization_id", "org_123")?;
    /// let name = ObjectName::new("api-token")?;
    /// let created = store
    ///     .create_object(&CreateObjectRequest::new(name, "s3cr3t", context))
    ///     .await?;
    /// let object = store.read_object(&created.id).await?;
    /// assert_eq!(object.value.expose_secret(), "s3cr3t");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(url: &str, keys: Arc<dyn KeyService>) -> Result<ObjectStore, Error> {
        Self::open_with(url, keys, StoreOptions::default()).await
    }

    /// [`ObjectStore::open`] on an SQLite file.
    pub async fn open_sqlite(path: &Path, keys: Arc<dyn KeyService>) -> Result<ObjectStore, Error> {
        let url = backend::sqlite_url(path)?;
        Self::open(&url, keys).await
    }

    /// [`ObjectStore::open`] with options.
    pub async fn open_with(
        url: &str,
        keys: Arc<dyn KeyService>,
        options: StoreOptions,
    ) -> Result<ObjectStore, Error> {
        let backend = Backend::of_url(url)?;
        let connections = options.max_connections.unwrap_or(match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 16,
        });
        let pool = backend::connect(url, backend, connections).await?;
        let cache = CacheConfig::default().with_reuse(options.reuse);
        let keys: Arc<dyn KeyService> = Arc::new(CachingKeyService::new(keys, cache));
        Ok(ObjectStore {
            inner: Arc::new(Inner {
                pool,
                backend,
                keys,
                options,
                rng: SystemRandom::new(),
            }),
        })
    }

    /// The database this store keeps its objects in.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Closes the connections (waiting for those in use).
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

fn storage(error: sqlx::Error) -> Error {
    let retryable = matches!(
        error,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
    );
    Error::new(ErrorKind::Storage, "the object store's database failed")
        .with_source(error)
        .with_retryable(retryable)
}

fn not_found() -> Error {
    Error::new(ErrorKind::NotFound, "object not found")
}

fn conflict(message: &str) -> Error {
    Error::new(ErrorKind::Conflict, message)
}

fn bad_request(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidRequest, message).with_status(400)
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn check_value(value: &SecretString) -> Result<(), Error> {
    let len = value.expose_secret().len();
    if len > MAX_VALUE_BYTES {
        return Err(bad_request(format!(
            "the value is {len} bytes; at most {MAX_VALUE_BYTES} are allowed"
        )));
    }
    Ok(())
}

fn column<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, Error>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(name).map_err(storage)
}

fn context_of(json: &str) -> Result<KeyContext, Error> {
    serde_json::from_str(json).map_err(|e| {
        Error::new(
            ErrorKind::Storage,
            "a stored key context is not a valid key context",
        )
        .with_source(e)
    })
}

impl Current {
    fn from_row(row: &AnyRow, with_envelope: bool) -> Result<Current, Error> {
        Ok(Current {
            id: column(row, "id")?,
            name: column(row, "name")?,
            context: context_of(&column::<String>(row, "key_context")?)?,
            version_id: column(row, "current_version_id")?,
            updated_at: column(row, "updated_at")?,
            updated_by: Actor {
                id: column(row, "updated_by_id")?,
                name: column(row, "updated_by_name")?,
            },
            key_id: column(row, "key_id")?,
            envelope: if with_envelope {
                Some(column(row, "envelope")?)
            } else {
                None
            },
        })
    }
}

impl Inner {
    fn metadata(&self, current: &Current) -> ObjectMetadata {
        ObjectMetadata {
            id: current.id.clone(),
            environment_id: self.options.environment_id.clone(),
            key_id: current.key_id.clone(),
            updated_by: current.updated_by.clone(),
            updated_at: format_rfc3339(current.updated_at),
            context: current.context.clone(),
            version_id: Some(current.version_id.clone()),
        }
    }

    /// The object whose `column` (`id` or `name`) is `value`.
    async fn current(
        &self,
        column: &str,
        value: &str,
        with_envelope: bool,
    ) -> Result<Current, Error> {
        let envelope = if with_envelope { ", v.envelope" } else { "" };
        let sql = format!(
            "SELECT {CURRENT_COLUMNS}{envelope} FROM vault_objects o \
             JOIN vault_object_versions v ON v.id = o.current_version_id WHERE o.{column} = $1"
        );
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?
            .ok_or_else(not_found)?;
        Current::from_row(&row, with_envelope)
    }

    async fn read(&self, column: &str, value: &str) -> Result<Object, Error> {
        let current = self.current(column, value, true).await?;
        let envelope = current.envelope.as_deref().unwrap_or_default();
        let value = seal::open(&*self.keys, &current.id, &current.version_id, envelope).await?;
        Ok(Object {
            id: current.id.clone(),
            name: current.name.clone(),
            value: SecretString::from(value),
            metadata: self.metadata(&current),
        })
    }

    async fn exists(&self, id: &str) -> Result<bool, Error> {
        let row = sqlx::query("SELECT id FROM vault_objects WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl ObjectService for ObjectStore {
    async fn create_object(&self, request: &CreateObjectRequest) -> Result<ObjectMetadata, Error> {
        let inner = &*self.inner;
        let name = request.name.as_str();
        ids::check_name(name)?;
        check_value(&request.value)?;
        request.key_context.validate()?;
        let object_id = ids::new_id(&inner.rng, OBJECT_ID_PREFIX)?;
        let version_id = ids::new_id(&inner.rng, VERSION_ID_PREFIX)?;
        let sealed = seal::seal(
            &*inner.keys,
            &request.key_context,
            &object_id,
            &version_id,
            request.value.expose_secret(),
        )
        .await?;
        let context_json = serde_json::to_string(&request.key_context).map_err(|e| {
            Error::new(ErrorKind::Encode, "the key context could not be encoded").with_source(e)
        })?;
        let now = now_micros();
        let actor = &inner.options.actor;
        let mut tx = inner.pool.begin().await.map_err(storage)?;
        let inserted = sqlx::query(
            "INSERT INTO vault_objects (id, name, key_context, current_version_id, \
             version_count, created_at, updated_at, updated_by_id, updated_by_name) \
             VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8)",
        )
        .bind(&object_id)
        .bind(name)
        .bind(&context_json)
        .bind(&version_id)
        .bind(now)
        .bind(now)
        .bind(&actor.id)
        .bind(&actor.name)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(conflict("an object with this name already exists"))
            }
            Err(error) => return Err(storage(error)),
        }
        insert_version(&mut tx, &object_id, &version_id, 1, now, &sealed).await?;
        tx.commit().await.map_err(storage)?;
        tracing::debug!(object_id, version_id, "object created");
        Ok(inner.metadata(&Current {
            id: object_id,
            name: name.to_owned(),
            context: request.key_context.clone(),
            version_id,
            updated_at: now,
            updated_by: actor.clone(),
            key_id: sealed.key_id,
            envelope: None,
        }))
    }

    async fn read_object(&self, id: &str) -> Result<Object, Error> {
        ids::check_object_id(id)?;
        self.inner.read("id", id).await
    }

    async fn read_object_by_name(&self, name: &str) -> Result<Object, Error> {
        ids::check_name(name)?;
        self.inner.read("name", name).await
    }

    async fn list_objects(&self, options: &ListObjectsOptions) -> Result<ObjectList, Error> {
        list(&self.inner, options).await
    }

    async fn list_object_versions(&self, id: &str) -> Result<VersionList, Error> {
        ids::check_object_id(id)?;
        let rows = sqlx::query(
            "SELECT v.id, v.created_at, v.size, v.etag, o.current_version_id \
             FROM vault_object_versions v JOIN vault_objects o ON o.id = v.object_id \
             WHERE v.object_id = $1 ORDER BY v.seq DESC",
        )
        .bind(id)
        .fetch_all(&self.inner.pool)
        .await
        .map_err(storage)?;
        if rows.is_empty() {
            return Err(not_found());
        }
        let data = rows
            .iter()
            .map(|row| {
                let id: String = column(row, "id")?;
                let current: String = column(row, "current_version_id")?;
                Ok(ObjectVersion {
                    current_version: id == current,
                    id,
                    created_at: format_rfc3339(column(row, "created_at")?),
                    size: u64::try_from(column::<i64>(row, "size")?).unwrap_or(0),
                    etag: column(row, "etag")?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(VersionList {
            data,
            list_metadata: ListMetadata::default(),
        })
    }

    async fn describe_object(&self, id: &str) -> Result<ObjectWithoutValue, Error> {
        ids::check_object_id(id)?;
        let current = self.inner.current("id", id, false).await?;
        Ok(ObjectWithoutValue {
            id: current.id.clone(),
            name: current.name.clone(),
            metadata: self.inner.metadata(&current),
        })
    }

    async fn update_object(
        &self,
        id: &str,
        request: &UpdateObjectRequest,
    ) -> Result<ObjectWithoutValue, Error> {
        let inner = &*self.inner;
        ids::check_object_id(id)?;
        if let Some(check) = &request.version_check {
            ids::check_version_id(check)?;
        }
        check_value(&request.value)?;
        // The key context never changes after create, so it may be read
        // before the transaction.
        let before = inner.current("id", id, false).await?;
        let version_id = ids::new_id(&inner.rng, VERSION_ID_PREFIX)?;
        let sealed = seal::seal(
            &*inner.keys,
            &before.context,
            id,
            &version_id,
            request.value.expose_secret(),
        )
        .await?;
        let now = now_micros();
        let actor = &inner.options.actor;
        let mut tx = inner.pool.begin().await.map_err(storage)?;
        // Compare-and-set: the first statement of the transaction is the
        // write, so SQLite takes its write lock here and PostgreSQL its row
        // lock; of N updates from one version exactly one matches.
        let mut sql = String::from(
            "UPDATE vault_objects SET current_version_id = $1, \
             version_count = version_count + 1, updated_at = $2, updated_by_id = $3, \
             updated_by_name = $4 WHERE id = $5",
        );
        if request.version_check.is_some() {
            sql.push_str(" AND current_version_id = $6");
        }
        sql.push_str(" RETURNING version_count");
        let mut query = sqlx::query(&sql)
            .bind(&version_id)
            .bind(now)
            .bind(&actor.id)
            .bind(&actor.name)
            .bind(id);
        if let Some(check) = &request.version_check {
            query = query.bind(check);
        }
        let updated = query.fetch_optional(&mut *tx).await.map_err(storage)?;
        let Some(row) = updated else {
            drop(tx);
            return Err(
                if request.version_check.is_some() && inner.exists(id).await? {
                    conflict("version_check is not the object's current version")
                } else {
                    not_found()
                },
            );
        };
        let seq: i64 = column(&row, "version_count")?;
        insert_version(&mut tx, id, &version_id, seq, now, &sealed).await?;
        tx.commit().await.map_err(storage)?;
        tracing::debug!(object_id = id, version_id, "object updated");
        let current = Current {
            version_id,
            updated_at: now,
            updated_by: actor.clone(),
            key_id: sealed.key_id,
            ..before
        };
        Ok(ObjectWithoutValue {
            id: current.id.clone(),
            name: current.name.clone(),
            metadata: inner.metadata(&current),
        })
    }

    async fn delete_object(
        &self,
        id: &str,
        version_check: Option<&str>,
    ) -> Result<DeleteObjectResponse, Error> {
        let inner = &*self.inner;
        ids::check_object_id(id)?;
        if let Some(check) = version_check {
            ids::check_version_id(check)?;
        }
        let mut tx = inner.pool.begin().await.map_err(storage)?;
        let mut sql = String::from("DELETE FROM vault_objects WHERE id = $1");
        if version_check.is_some() {
            sql.push_str(" AND current_version_id = $2");
        }
        sql.push_str(" RETURNING name");
        let mut query = sqlx::query(&sql).bind(id);
        if let Some(check) = version_check {
            query = query.bind(check);
        }
        let deleted = query.fetch_optional(&mut *tx).await.map_err(storage)?;
        let Some(row) = deleted else {
            drop(tx);
            return Err(if version_check.is_some() && inner.exists(id).await? {
                conflict("version_check is not the object's current version")
            } else {
                not_found()
            });
        };
        let name: String = column(&row, "name")?;
        sqlx::query("DELETE FROM vault_object_versions WHERE object_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        tracing::debug!(object_id = id, "object deleted");
        Ok(DeleteObjectResponse {
            name,
            success: true,
        })
    }
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'_, Any>,
    object_id: &str,
    version_id: &str,
    seq: i64,
    now: i64,
    sealed: &seal::Sealed,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO vault_object_versions (id, object_id, seq, created_at, size, etag, \
         key_id, envelope) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(version_id)
    .bind(object_id)
    .bind(seq)
    .bind(now)
    .bind(sealed.size)
    .bind(&sealed.etag)
    .bind(&sealed.key_id)
    .bind(&sealed.envelope)
    .execute(&mut **tx)
    .await
    .map_err(storage)?;
    Ok(())
}

/// A page of objects in creation order, with cursors on `(created_at, id)`.
async fn list(inner: &Inner, options: &ListObjectsOptions) -> Result<ObjectList, Error> {
    let limit = options.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(bad_request(format!(
            "limit must be from 1 to {MAX_LIST_LIMIT}"
        )));
    }
    if options.before.is_some() && options.after.is_some() {
        return Err(bad_request("give before or after, not both"));
    }
    let order = options.order.unwrap_or_default();
    let backward = options.before.is_some();
    let cursor = options
        .before
        .as_deref()
        .or(options.after.as_deref())
        .map(Cursor::decode)
        .transpose()?;
    if let Some(search) = &options.search {
        if serde_json::from_str::<serde_json::Value>(search).is_ok_and(|v| v.is_object()) {
            return Err(bad_request(
                "structured search is not supported; search with a plain name substring",
            ));
        }
    }
    let updated_after = options
        .updated_after
        .as_deref()
        .map(|text| {
            parse_rfc3339(text)
                .or_else(|| parse_js_date(text))
                .ok_or_else(|| {
                    bad_request(
                        "updatedAfter must be an ISO 8601 date-time, such as 2026-01-31T12:00:00Z",
                    )
                })
        })
        .transpose()?;
    // Walking backward from a `before` cursor reads the other way, then
    // turns the page around.
    let ascending = (order == Order::Asc) != backward;
    let (cmp, dir) = if ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    let mut sql = String::from("SELECT id, name, updated_at, created_at FROM vault_objects");
    let mut clauses = Vec::new();
    let mut param = 0;
    let mut next = || {
        param += 1;
        param
    };
    if cursor.is_some() {
        let (a, b, c) = (next(), next(), next());
        clauses.push(format!(
            "(created_at {cmp} ${a} OR (created_at = ${b} AND id {cmp} ${c}))"
        ));
    }
    if options.search.is_some() {
        clauses.push(inner.backend.contains(next()));
    }
    if updated_after.is_some() {
        clauses.push(format!("updated_at > ${}", next()));
    }
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(&format!(
        " ORDER BY created_at {dir}, id {dir} LIMIT ${}",
        next()
    ));
    let mut query: Query<'_, Any, AnyArguments<'_>> = sqlx::query(&sql);
    if let Some(cursor) = &cursor {
        query = query
            .bind(cursor.created_at)
            .bind(cursor.created_at)
            .bind(cursor.id.as_str());
    }
    if let Some(search) = &options.search {
        query = query.bind(search.as_str());
    }
    if let Some(after) = updated_after {
        query = query.bind(after);
    }
    query = query.bind(i64::from(limit) + 1);
    let rows = query.fetch_all(&inner.pool).await.map_err(storage)?;
    let more = rows.len() > limit as usize;
    let mut page = rows
        .iter()
        .take(limit as usize)
        .map(|row| {
            Ok((
                Cursor {
                    created_at: column(row, "created_at")?,
                    id: column(row, "id")?,
                },
                ObjectSummary {
                    id: column(row, "id")?,
                    name: column(row, "name")?,
                    updated_at: Some(format_rfc3339(column(row, "updated_at")?)),
                },
            ))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if backward {
        page.reverse();
    }
    let first = page.first().map(|(cursor, _)| cursor.encode());
    let last = page.last().map(|(cursor, _)| cursor.encode());
    let list_metadata = if backward {
        ListMetadata {
            before: if more { first } else { None },
            after: last,
        }
    } else {
        ListMetadata {
            before: if cursor.is_some() { first } else { None },
            after: if more { last } else { None },
        }
    };
    Ok(ObjectList {
        data: page.into_iter().map(|(_, summary)| summary).collect(),
        list_metadata,
    })
}
