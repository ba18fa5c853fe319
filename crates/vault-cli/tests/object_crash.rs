//! `workos-vault serve` over its SQLite object store, SIGKILLed in the middle of
//! writes 20 times: every restart opens the database, and it holds every
//! write that was acknowledged (and, for each object, the last acknowledged
//! value or the one write that was in flight).

#![allow(clippy::unwrap_used)] // Test helpers panic on purpose.
#![cfg(unix)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};

use vault::object::{CreateObjectRequest, ObjectName, ObjectService, UpdateObjectRequest};
use vault::{HttpKeyService, KeyContext};

const API_KEY: &str = "sk_test_crash_0123456";
const RESTARTS: usize = 20;
const WRITERS: usize = 8;
/// Acknowledged writes per run before the kill.
const WRITES_BEFORE_KILL: usize = 40;

/// What a writer knows about its object: the last acknowledged value, and
/// the value of a write sent but not (yet) acknowledged.
#[derive(Default, Clone)]
struct Known {
    acked: Option<String>,
    in_flight: Option<String>,
}

fn serve(home: &Path) -> (Child, String) {
    let served = common::serve(home, "127.0.0.1:0", API_KEY, &[]);
    assert!(served.line.contains("objects in sqlite"), "{}", served.line);
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

#[test]
fn acknowledged_writes_survive_sigkill() {
    let home = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let context = KeyContext::new()
        .with("organization_id", "org_crash")
        .unwrap();
    // Object id -> what its writer knows.
    let known: Arc<Mutex<HashMap<String, Known>>> = Arc::default();
    for run in 0..RESTARTS {
        let (mut child, url) = serve(home.path());
        let service = Arc::new(client(&url));
        let (acks, mut ack_seen) = tokio::sync::watch::channel(0usize);
        let acks = Arc::new(acks);
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for writer in 0..WRITERS {
                let (service, known, context, acks) = (
                    service.clone(),
                    known.clone(),
                    context.clone(),
                    acks.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let name = ObjectName::new(format!("run {run} writer {writer}")).unwrap();
                    let request = CreateObjectRequest::new(name, "v0", context);
                    let Ok(created) = service.create_object(&request).await else {
                        return;
                    };
                    let id = created.id;
                    known.lock().unwrap().insert(
                        id.clone(),
                        Known {
                            acked: Some("v0".to_owned()),
                            in_flight: None,
                        },
                    );
                    acks.send_modify(|n| *n += 1);
                    for step in 1.. {
                        let value = format!("v{step}");
                        known.lock().unwrap().get_mut(&id).unwrap().in_flight = Some(value.clone());
                        let update = UpdateObjectRequest::new(value.clone());
                        if service.update_object(&id, &update).await.is_err() {
                            return;
                        }
                        let mut known = known.lock().unwrap();
                        let entry = known.get_mut(&id).unwrap();
                        entry.acked = Some(value);
                        entry.in_flight = None;
                        drop(known);
                        acks.send_modify(|n| *n += 1);
                    }
                }));
            }
            // Kill once enough writes are acknowledged, with writes in flight.
            ack_seen
                .wait_for(|n| *n >= WRITES_BEFORE_KILL)
                .await
                .unwrap();
            child.kill().unwrap();
            for task in tasks {
                task.await.unwrap();
            }
        });
        child.wait().unwrap();
    }

    // The last restart: the database opens and holds every acknowledged write.
    let (mut child, url) = serve(home.path());
    let service = client(&url);
    let known = known.lock().unwrap().clone();
    assert!(known.len() >= RESTARTS, "every run created objects");
    let in_flight = known.values().filter(|k| k.in_flight.is_some()).count();
    eprintln!(
        "{RESTARTS} kills: {} objects acknowledged, {in_flight} with a write in flight at a kill",
        known.len()
    );
    runtime.block_on(async {
        for (id, known) in &known {
            let object = service.read_object(id).await.unwrap_or_else(|e| {
                panic!("acknowledged object {id} is missing after the crashes: {e}")
            });
            let value = object.value.expose_secret();
            assert!(
                known.acked.as_deref() == Some(value) || known.in_flight.as_deref() == Some(value),
                "{id}: holds {value:?}, acknowledged {:?}, in flight {:?}",
                known.acked,
                known.in_flight
            );
        }
    });
    child.kill().unwrap();
    child.wait().unwrap();
}
