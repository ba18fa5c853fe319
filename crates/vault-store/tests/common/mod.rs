//! The backends every store test runs against: SQLite in a temporary
//! directory, always; PostgreSQL when `WORKOS_VAULT_TEST_POSTGRES_URL`
//! names a server (`cargo xtask postgres` starts one; `cargo xtask ci`
//! does and sets it), in a fresh database per test. Without it the
//! PostgreSQL half is skipped with a message, unless
//! `WORKOS_VAULT_REQUIRE_POSTGRES=1` (CI) makes that a failure.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use vault_api::KeyService;
use vault_local::LocalKeyService;
use vault_store::{ObjectStore, StoreOptions};

/// A store under test, and a raw connection to its database.
pub struct Case {
    pub label: &'static str,
    pub store: ObjectStore,
    pub raw: AnyPool,
    pub url: String,
    /// The SQLite file (and its directory), for SQLite.
    pub sqlite: Option<(tempfile::TempDir, std::path::PathBuf)>,
    pub keys: Arc<dyn KeyService>,
}

pub const POSTGRES_URL: &str = "WORKOS_VAULT_TEST_POSTGRES_URL";

/// SQLite, and PostgreSQL when configured.
pub async fn cases() -> Vec<Case> {
    cases_with(StoreOptions::new()).await
}

pub async fn cases_with(options: StoreOptions) -> Vec<Case> {
    sqlx::any::install_default_drivers();
    let keys: Arc<dyn KeyService> = Arc::new(LocalKeyService::ephemeral());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("objects.db");
    let store = ObjectStore::open_with(
        &format!("sqlite://{}?mode=rwc", path.display()),
        keys.clone(),
        options.clone(),
    )
    .await
    .unwrap();
    let url = format!("sqlite://{}", path.display());
    let raw = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let mut cases = vec![Case {
        label: "sqlite",
        store,
        raw,
        url,
        sqlite: Some((dir, path)),
        keys: keys.clone(),
    }];
    if let Some(url) = postgres_database().await {
        let store = ObjectStore::open_with(&url, keys.clone(), options)
            .await
            .unwrap();
        let raw = AnyPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap();
        cases.push(Case {
            label: "postgres",
            store,
            raw,
            url,
            sqlite: None,
            keys,
        });
    }
    cases
}

/// A fresh, empty database on the test PostgreSQL server, or `None` (with
/// a message) when there is none.
async fn postgres_database() -> Option<String> {
    let Ok(url) = std::env::var(POSTGRES_URL) else {
        assert!(
            std::env::var("WORKOS_VAULT_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "WORKOS_VAULT_REQUIRE_POSTGRES=1 but {POSTGRES_URL} is not set: run `cargo xtask postgres`"
        );
        eprintln!("skipping PostgreSQL: {POSTGRES_URL} is not set (run `cargo xtask postgres`)");
        return None;
    };
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect to the test PostgreSQL server");
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    let name = format!(
        "vault_test_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    // Swap the database in the URL's path, keeping its query.
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url.as_str(), String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    Some(format!("{base}/{name}{query}"))
}
