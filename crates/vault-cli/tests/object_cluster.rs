//! Three `workos-vault serve` replicas over one PostgreSQL (one keyring), 64
//! clients doing create / read / update-with-version-check / delete, one
//! replica SIGKILLed mid-run and restarted: no acknowledged write is lost,
//! no update is lost, every read after the run returns the latest
//! acknowledged value (or the one write whose answer the kill swallowed).
//!
//! Needs `WORKOS_VAULT_TEST_POSTGRES_URL` (`cargo xtask postgres --serve`;
//! `cargo xtask ci` sets it with `WORKOS_VAULT_REQUIRE_POSTGRES=1`); skipped with a
//! message otherwise.

#![allow(clippy::unwrap_used)] // Test helpers panic on purpose.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use vault::object::{CreateObjectRequest, ObjectName, ObjectService, UpdateObjectRequest};
use vault::{HttpKeyService, KeyContext, KeyServiceErrorKind as ErrorKind};

const API_KEY: &str = "sk_test_cluster_0123";
const REPLICAS: usize = 3;
const CLIENTS: usize = 64;
const COUNTERS: usize = 8;
/// Increments each client lands on its counter.
const INCREMENTS: usize = 6;
/// Acknowledged operations before replica 0 is killed.
const OPS_BEFORE_KILL: usize = 300;

fn serve(home: &Path, listen: &str, database: &str) -> (Child, String) {
    let served = common::serve(
        home,
        listen,
        API_KEY,
        &[("WORKOS_VAULT_DATABASE_URL", database)],
    );
    assert!(
        served.line.contains("objects in postgres"),
        "{}",
        served.line
    );
    (served.child, served.url)
}

fn client(url: &str) -> HttpKeyService {
    HttpKeyService::builder()
        .api_key(API_KEY)
        .base_url(url)
        .max_retries(0)
        .build()
        .unwrap()
}

/// The replicas' clients; a client moves to the next replica after a
/// failure.
struct Replicas(Vec<HttpKeyService>);

impl Replicas {
    fn at(&self, index: usize) -> &HttpKeyService {
        &self.0[index % self.0.len()]
    }
}

/// What one client saw.
#[derive(Default)]
struct Outcome {
    /// Increments acknowledged, and increments whose answer was lost.
    acked: usize,
    unknown: usize,
    /// Its own object.
    own: Option<Own>,
}

/// A client's own object: what it knows of it.
struct Own {
    id: String,
    /// The last acknowledged value, and a write whose answer was lost.
    last: String,
    lost: Option<String>,
    /// Whether it tried to delete it, and whether the delete was answered.
    delete_tried: bool,
    deleted: bool,
}

async fn run_client(
    index: usize,
    replicas: Arc<Replicas>,
    counters: Arc<Vec<String>>,
    ops: Arc<AtomicUsize>,
    kill: Arc<tokio::sync::Notify>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut replica = index;
    let acked = |ops: &AtomicUsize| {
        if ops.fetch_add(1, Ordering::Relaxed) + 1 == OPS_BEFORE_KILL {
            kill.notify_one();
        }
    };
    let context = KeyContext::new()
        .with("organization_id", "org_cluster")
        .unwrap();
    // Its own object: create (retried on another replica after a failure,
    // by name, since a create whose answer was lost may have landed).
    let name = format!("cluster client {index} {}", std::process::id());
    let id = loop {
        let request =
            CreateObjectRequest::new(ObjectName::new(&name).unwrap(), "v0", context.clone());
        match replicas.at(replica).create_object(&request).await {
            Ok(created) => break created.id,
            Err(error) if error.kind() == ErrorKind::Conflict => {
                match replicas.at(replica).read_object_by_name(&name).await {
                    Ok(object) if object.value.expose_secret() == "v0" => break object.id,
                    _ => replica += 1,
                }
            }
            Err(_) => replica += 1,
        }
    };
    acked(&ops);
    let (mut last, mut lost) = ("v0".to_owned(), None);
    // Increments of a shared counter, read-modify-write with version_check.
    let counter = &counters[index % COUNTERS];
    let mut done = 0;
    while done < INCREMENTS {
        let Ok(current) = replicas.at(replica).read_object(counter).await else {
            replica += 1;
            continue;
        };
        let count: u64 = current.value.expose_secret().parse().unwrap();
        let version = current.metadata.version_id.clone().unwrap();
        let update = UpdateObjectRequest::new((count + 1).to_string()).with_version_check(version);
        match replicas.at(replica).update_object(counter, &update).await {
            Ok(_) => {
                outcome.acked += 1;
                done += 1;
                acked(&ops);
            }
            Err(error) if error.kind() == ErrorKind::Conflict => {}
            Err(_) => {
                // The answer is lost: it may or may not have landed.
                outcome.unknown += 1;
                done += 1;
                replica += 1;
            }
        }
        // Its own object, guarded by its own last version.
        let value = format!("v{done}");
        let Ok(own) = replicas.at(replica).describe_object(&id).await else {
            replica += 1;
            continue;
        };
        let check = own.metadata.version_id.unwrap();
        let update = UpdateObjectRequest::new(value.clone()).with_version_check(check);
        match replicas.at(replica).update_object(&id, &update).await {
            Ok(_) => {
                last = value;
                lost = None;
                acked(&ops);
            }
            Err(error) if error.kind() == ErrorKind::Conflict => {
                panic!("client {index}: nobody else writes its object: {error}")
            }
            Err(_) => {
                lost = Some(value);
                replica += 1;
            }
        }
    }
    // Every other client deletes its object at the end.
    let mut deleted = false;
    let delete_tried = index.is_multiple_of(2);
    if delete_tried {
        for _ in 0..REPLICAS {
            match replicas.at(replica).delete_object(&id, None).await {
                Ok(_) => {
                    deleted = true;
                    acked(&ops);
                    break;
                }
                Err(error) if error.kind() == ErrorKind::NotFound => break,
                Err(_) => replica += 1,
            }
        }
    }
    outcome.own = Some(Own {
        id,
        last,
        lost,
        delete_tried,
        deleted,
    });
    outcome
}

#[test]
fn replicas_over_one_postgres_lose_nothing_when_one_is_killed() {
    let Ok(database) = std::env::var("WORKOS_VAULT_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("WORKOS_VAULT_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "WORKOS_VAULT_REQUIRE_POSTGRES=1 but WORKOS_VAULT_TEST_POSTGRES_URL is not set"
        );
        eprintln!("skipping: WORKOS_VAULT_TEST_POSTGRES_URL is not set (run `cargo xtask postgres --serve`)");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..REPLICAS {
        let (child, url) = serve(home.path(), "127.0.0.1:0", &database);
        children.push(child);
        urls.push(url);
    }
    let replicas = Arc::new(Replicas(urls.iter().map(|url| client(url)).collect()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let context = KeyContext::new()
        .with("organization_id", "org_cluster")
        .unwrap();
    let outcomes = runtime.block_on(async {
        let mut counters = Vec::new();
        for i in 0..COUNTERS {
            let name =
                ObjectName::new(format!("cluster counter {i} {}", std::process::id())).unwrap();
            let created = replicas
                .at(i)
                .create_object(&CreateObjectRequest::new(name, "0", context.clone()))
                .await
                .unwrap();
            counters.push(created.id);
        }
        let counters = Arc::new(counters);
        let ops = Arc::new(AtomicUsize::new(0));
        let kill = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        for index in 0..CLIENTS {
            tasks.push(tokio::spawn(run_client(
                index,
                replicas.clone(),
                counters.clone(),
                ops.clone(),
                kill.clone(),
            )));
        }
        // SIGKILL replica 0 mid-run, then start it again on its port.
        kill.notified().await;
        children[0].kill().unwrap();
        children[0].wait().unwrap();
        let port = urls[0].rsplit(':').next().unwrap().to_owned();
        let (child, _) = serve(home.path(), &format!("127.0.0.1:{port}"), &database);
        children[0] = child;
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        (counters, outcomes, ops.load(Ordering::Relaxed))
    });
    let (counters, outcomes, ops) = outcomes;
    let check = client(&urls[0]);
    let (acked, unknown): (usize, usize) = outcomes
        .iter()
        .fold((0, 0), |(a, u), o| (a + o.acked, u + o.unknown));
    runtime.block_on(async {
        let mut total = 0;
        for counter in counters.iter() {
            let value: usize = check
                .read_object(counter)
                .await
                .unwrap()
                .value
                .expose_secret()
                .parse()
                .unwrap();
            let versions = check.list_object_versions(counter).await.unwrap().data;
            assert_eq!(
                versions.len(),
                value + 1,
                "every increment is one version: no lost update"
            );
            total += value;
        }
        assert!(
            (acked..=acked + unknown).contains(&total),
            "counters hold {total}; {acked} increments acknowledged, {unknown} unanswered"
        );
        for outcome in &outcomes {
            let own = outcome.own.as_ref().unwrap();
            let id = &own.id;
            match check.read_object(id).await {
                Ok(object) => {
                    assert!(!own.deleted, "{id}: an acknowledged delete came back");
                    let value = object.value.expose_secret();
                    assert!(
                        value == own.last || own.lost.as_deref() == Some(value),
                        "{id}: holds {value:?}, acknowledged {:?}, unanswered {:?}",
                        own.last,
                        own.lost
                    );
                }
                Err(error) => {
                    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
                    assert!(own.delete_tried, "{id}: an acknowledged object is gone");
                }
            }
        }
        eprintln!(
            "{REPLICAS} replicas, {CLIENTS} clients, one SIGKILL: {ops} operations acknowledged, \
             {acked} increments acknowledged, {unknown} unanswered, counters hold {total}"
        );
    });
    for mut child in children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
