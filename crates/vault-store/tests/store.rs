#![allow(clippy::unwrap_used)]
//! The store's behaviour, on SQLite and on PostgreSQL (see `common`).

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::Row;
use vault_api::object::{
    CreateObjectRequest, ListObjectsOptions, ObjectName, ObjectService, Order, UpdateObjectRequest,
};
use vault_api::{ErrorKind, KeyContext};
use vault_store::{ObjectStore, MAX_VALUE_BYTES};

fn context() -> KeyContext {
    KeyContext::new()
        .with("organization_id", "org_123")
        .unwrap()
}

fn create(name: &str, value: &str) -> CreateObjectRequest {
    CreateObjectRequest::new(ObjectName::new(name).unwrap(), value, context())
}

async fn new_object(store: &ObjectStore, name: &str, value: &str) -> (String, String) {
    let created = store.create_object(&create(name, value)).await.unwrap();
    (created.id, created.version_id.unwrap())
}

#[tokio::test]
async fn create_read_update_describe_versions_delete() {
    for case in common::cases().await {
        let store = &case.store;
        let label = case.label;
        let created = store
            .create_object(&create("api-token", "first value"))
            .await
            .unwrap();
        assert!(created.id.starts_with("obj_"), "{label}");
        assert_eq!(created.context, context());
        assert_eq!(created.environment_id, "environment_local");
        let v1 = created.version_id.clone().unwrap();
        assert!(v1.starts_with("ver_"));

        let read = store.read_object(&created.id).await.unwrap();
        assert_eq!(read.value.expose_secret(), "first value", "{label}");
        assert_eq!(read.name, "api-token");
        assert_eq!(read.metadata, created);
        let by_name = store.read_object_by_name("api-token").await.unwrap();
        assert_eq!(by_name.id, created.id);
        assert_eq!(by_name.value.expose_secret(), "first value");

        let updated = store
            .update_object(
                &created.id,
                &UpdateObjectRequest::new("second value").with_version_check(&v1),
            )
            .await
            .unwrap();
        let v2 = updated.metadata.version_id.clone().unwrap();
        assert_ne!(v1, v2);
        assert_eq!(updated.name, "api-token");
        let described = store.describe_object(&created.id).await.unwrap();
        assert_eq!(described, updated, "{label}");
        assert_eq!(
            store
                .read_object(&created.id)
                .await
                .unwrap()
                .value
                .expose_secret(),
            "second value"
        );
        let blind = store
            .update_object(&created.id, &UpdateObjectRequest::new("third"))
            .await
            .unwrap();
        let v3 = blind.metadata.version_id.unwrap();

        let versions = store.list_object_versions(&created.id).await.unwrap();
        let ids: Vec<&str> = versions.data.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(
            ids,
            [v3.as_str(), v2.as_str(), v1.as_str()],
            "{label}: newest first"
        );
        let current: Vec<bool> = versions.data.iter().map(|v| v.current_version).collect();
        assert_eq!(current, [true, false, false]);
        assert_eq!(versions.data[0].size, 5);
        assert_eq!(versions.data[2].size, "first value".len() as u64);
        assert!(versions.data.iter().all(|v| v.etag.len() == 64));
        assert_eq!(versions.list_metadata.after, None);

        let deleted = store.delete_object(&created.id, None).await.unwrap();
        assert_eq!(deleted.name, "api-token");
        assert!(deleted.success);
        for error in [
            store.read_object(&created.id).await.unwrap_err(),
            store.read_object_by_name("api-token").await.unwrap_err(),
        ] {
            assert_eq!(error.kind(), ErrorKind::NotFound, "{label}");
        }
        assert_eq!(
            store.describe_object(&created.id).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            store
                .list_object_versions(&created.id)
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            store
                .update_object(&created.id, &UpdateObjectRequest::new("x"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            store
                .delete_object(&created.id, None)
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        // The name is free again, and nothing of the old object is left.
        store
            .create_object(&create("api-token", "again"))
            .await
            .unwrap();
        let versions: i64 = sqlx::query("SELECT COUNT(*) AS n FROM vault_object_versions")
            .fetch_one(&case.raw)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(versions, 1, "{label}");
    }
}

#[tokio::test]
async fn names_are_unique_and_version_checks_are_enforced() {
    for case in common::cases().await {
        let store = &case.store;
        let label = case.label;
        let (id, v1) = new_object(store, "db-password", "one").await;
        let duplicate = store
            .create_object(&create("db-password", "other"))
            .await
            .unwrap_err();
        assert_eq!(duplicate.kind(), ErrorKind::Conflict, "{label}");
        assert!(duplicate.message().contains("already exists"));

        let v2 = store
            .update_object(
                &id,
                &UpdateObjectRequest::new("two").with_version_check(&v1),
            )
            .await
            .unwrap()
            .metadata
            .version_id
            .unwrap();
        let stale = store
            .update_object(
                &id,
                &UpdateObjectRequest::new("lost").with_version_check(&v1),
            )
            .await
            .unwrap_err();
        assert_eq!(stale.kind(), ErrorKind::Conflict, "{label}");
        let stale_delete = store.delete_object(&id, Some(&v1)).await.unwrap_err();
        assert_eq!(stale_delete.kind(), ErrorKind::Conflict, "{label}");
        assert_eq!(
            store.read_object(&id).await.unwrap().value.expose_secret(),
            "two",
            "{label}: nothing changed"
        );
        assert_eq!(store.list_object_versions(&id).await.unwrap().data.len(), 2);
        store.delete_object(&id, Some(&v2)).await.unwrap();
        assert_eq!(
            store.read_object(&id).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}

#[tokio::test]
async fn bad_ids_names_and_values_are_refused_and_nothing_is_stored() {
    for case in common::cases().await {
        let store = &case.store;
        let label = case.label;
        for bad in [
            "",
            "obj_1",
            "../../etc/passwd",
            "OBJ_0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(
                store.read_object(bad).await.unwrap_err().kind(),
                ErrorKind::InvalidRequest,
                "{label}: {bad}"
            );
            assert_eq!(
                store.delete_object(bad, None).await.unwrap_err().kind(),
                ErrorKind::InvalidRequest
            );
        }
        let missing = "obj_0123456789abcdef0123456789abcdef";
        assert_eq!(
            store.read_object(missing).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        let (id, _) = new_object(store, "good", "v").await;
        let bad_check = store
            .update_object(&id, &UpdateObjectRequest::new("x").with_version_check("v1"))
            .await
            .unwrap_err();
        assert_eq!(bad_check.kind(), ErrorKind::InvalidRequest);
        for name in ["a/b", "..", "a%2Fb", "x\\y"] {
            let error = store.create_object(&create(name, "v")).await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{label}: {name}");
            assert_eq!(
                store.read_object_by_name(name).await.unwrap_err().kind(),
                ErrorKind::InvalidRequest
            );
        }
        let huge = "x".repeat(MAX_VALUE_BYTES + 1);
        let error = store
            .create_object(&create("huge", &huge))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest);
        assert!(error.message().contains("bytes"), "{error}");
        assert!(!error.message().contains("xxxx"));
        let at_limit = "y".repeat(MAX_VALUE_BYTES);
        new_object(store, "at-limit", &at_limit).await;
        let objects: i64 = sqlx::query("SELECT COUNT(*) AS n FROM vault_objects")
            .fetch_one(&case.raw)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(objects, 2, "{label}: only the good ones");
    }
}

#[tokio::test]
async fn pages_walk_both_ways_in_both_orders() {
    for case in common::cases().await {
        let store = &case.store;
        let label = case.label;
        let mut names = Vec::new();
        for i in 0..7 {
            let name = format!("item-{i}");
            new_object(store, &name, "v").await;
            names.push(name);
        }
        for order in [Order::Asc, Order::Desc] {
            let mut expected = names.clone();
            if order == Order::Desc {
                expected.reverse();
            }
            let mut seen = Vec::new();
            let mut pages = Vec::new();
            let mut options = ListObjectsOptions::new().limit(3).order(order);
            loop {
                let page = store.list_objects(&options).await.unwrap();
                assert!(page.data.len() <= 3);
                seen.extend(page.data.iter().map(|o| o.name.clone()));
                pages.push(page.clone());
                match page.list_metadata.after {
                    Some(after) => {
                        options = ListObjectsOptions::new().limit(3).order(order).after(after)
                    }
                    None => break,
                }
            }
            assert_eq!(seen, expected, "{label} {order}");
            assert_eq!(pages.len(), 3);
            assert_eq!(pages[0].list_metadata.before, None);
            // Back from the last page with its `before` cursor.
            let before = pages[2].list_metadata.before.clone().unwrap();
            let back = store
                .list_objects(
                    &ListObjectsOptions::new()
                        .limit(3)
                        .order(order)
                        .before(before),
                )
                .await
                .unwrap();
            assert_eq!(back.data, pages[1].data, "{label} {order}");
            let before = back.list_metadata.before.clone().unwrap();
            let first = store
                .list_objects(
                    &ListObjectsOptions::new()
                        .limit(3)
                        .order(order)
                        .before(before),
                )
                .await
                .unwrap();
            assert_eq!(first.data, pages[0].data);
            assert_eq!(first.list_metadata.before, None);
        }
        let default = store
            .list_objects(&ListObjectsOptions::new())
            .await
            .unwrap();
        assert_eq!(default.data.len(), 7);
        assert_eq!(
            default.data[0].name, "item-6",
            "{label}: newest first by default"
        );
        for bad in [
            ListObjectsOptions::new().after("junk"),
            ListObjectsOptions::new().after("a").before("b"),
            ListObjectsOptions::new().limit(0),
            ListObjectsOptions::new().limit(101),
        ] {
            assert_eq!(
                store.list_objects(&bad).await.unwrap_err().kind(),
                ErrorKind::InvalidRequest,
                "{label}: {bad:?}"
            );
        }
    }
}

#[tokio::test]
async fn search_and_updated_after_filter() {
    for case in common::cases().await {
        let store = &case.store;
        let label = case.label;
        let (a, _) = new_object(store, "Acme:token", "v").await;
        new_object(store, "acme:password", "v").await;
        new_object(store, "globex:token", "v").await;
        let names = |list: vault_api::object::ObjectList| {
            list.data
                .into_iter()
                .map(|o| o.name)
                .collect::<HashSet<_>>()
        };
        let found = store
            .list_objects(&ListObjectsOptions::new().search("cme:"))
            .await
            .unwrap();
        assert_eq!(
            names(found),
            HashSet::from(["Acme:token".to_owned(), "acme:password".to_owned()]),
            "{label}"
        );
        let case_sensitive = store
            .list_objects(&ListObjectsOptions::new().search("acme"))
            .await
            .unwrap();
        assert_eq!(
            names(case_sensitive),
            HashSet::from(["acme:password".to_owned()])
        );
        let wildcard = store
            .list_objects(&ListObjectsOptions::new().search("_"))
            .await
            .unwrap();
        assert!(wildcard.data.is_empty(), "{label}: _ is not a wildcard");
        let structured = store
            .list_objects(&ListObjectsOptions::new().search(r#"{"name":"x"}"#))
            .await
            .unwrap_err();
        assert_eq!(structured.kind(), ErrorKind::InvalidRequest);
        assert!(structured.message().contains("structured search"));

        let mark = store.describe_object(&a).await.unwrap().metadata.updated_at;
        let all = store
            .list_objects(&ListObjectsOptions::new().updated_after("2000-01-01T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(all.data.len(), 3);
        store
            .update_object(&a, &UpdateObjectRequest::new("changed"))
            .await
            .unwrap();
        let changed = store
            .list_objects(&ListObjectsOptions::new().updated_after(mark))
            .await
            .unwrap();
        assert!(
            names(changed).contains("Acme:token"),
            "{label}: the updated object is listed"
        );
        let future = store
            .list_objects(&ListObjectsOptions::new().updated_after("2999-01-01T00:00:00+02:00"))
            .await
            .unwrap();
        assert!(future.data.is_empty());
        let bad = store
            .list_objects(&ListObjectsOptions::new().updated_after("yesterday"))
            .await
            .unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::InvalidRequest);
    }
}

#[tokio::test]
async fn the_database_holds_no_plaintext() {
    const SECRET: &str = "PLAINTEXT-MARKER-7f3a9c";
    for case in common::cases().await {
        let store = &case.store;
        let label = case.label;
        let (id, _) = new_object(store, "marker", SECRET).await;
        store
            .update_object(&id, &UpdateObjectRequest::new(format!("{SECRET}-v2")))
            .await
            .unwrap();
        // Every column of every row, as the database hands it out.
        let rows = sqlx::query("SELECT envelope, etag, key_id FROM vault_object_versions")
            .fetch_all(&case.raw)
            .await
            .unwrap();
        for row in &rows {
            let envelope: Vec<u8> = row.try_get("envelope").unwrap();
            assert!(
                !envelope
                    .windows(SECRET.len())
                    .any(|w| w == SECRET.as_bytes()),
                "{label}"
            );
        }
        if let Some((_, path)) = &case.sqlite {
            case.store.close().await;
            case.raw.close().await;
            let mut bytes = std::fs::read(path).unwrap();
            let wal = path.with_extension("db-wal");
            if let Ok(more) = std::fs::read(&wal) {
                bytes.extend(more);
            }
            assert!(
                bytes.windows(6).any(|w| w == b"marker"),
                "the file was read"
            );
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "the SQLite file holds the plaintext"
            );
        }
    }
}

#[tokio::test]
async fn a_value_moved_to_another_row_does_not_open() {
    for case in common::cases().await {
        let store = &case.store;
        let label = case.label;
        let (a, _) = new_object(store, "a", "value of a").await;
        let (b, _) = new_object(store, "b", "value of b").await;
        // Copy a's current envelope over b's current version.
        let envelope: Vec<u8> = sqlx::query(
            "SELECT v.envelope FROM vault_object_versions v \
             JOIN vault_objects o ON o.current_version_id = v.id WHERE o.id = $1",
        )
        .bind(&a)
        .fetch_one(&case.raw)
        .await
        .unwrap()
        .try_get("envelope")
        .unwrap();
        sqlx::query(
            "UPDATE vault_object_versions SET envelope = $1 WHERE id = \
             (SELECT current_version_id FROM vault_objects WHERE id = $2)",
        )
        .bind(&envelope)
        .bind(&b)
        .execute(&case.raw)
        .await
        .unwrap();
        let error = store.read_object(&b).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Storage, "{label}");
        assert!(!error.to_string().contains("value of"), "{error}");
        // An older version of a moved into a's current version fails too.
        let v2 = store
            .update_object(&a, &UpdateObjectRequest::new("second of a"))
            .await
            .unwrap()
            .metadata
            .version_id
            .unwrap();
        sqlx::query("UPDATE vault_object_versions SET envelope = $1 WHERE id = $2")
            .bind(&envelope)
            .bind(&v2)
            .execute(&case.raw)
            .await
            .unwrap();
        assert_eq!(
            store.read_object(&a).await.unwrap_err().kind(),
            ErrorKind::Storage,
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_version_checks_have_one_winner_and_no_update_is_lost() {
    const RACERS: usize = 16;
    for case in common::cases().await {
        let store = Arc::new(case.store.clone());
        let label = case.label;
        let (id, v1) = new_object(&store, "contended", "start").await;
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            let (store, id, v1) = (store.clone(), id.clone(), v1.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .update_object(
                        &id,
                        &UpdateObjectRequest::new(format!("racer {i}")).with_version_check(v1),
                    )
                    .await
            }));
        }
        let mut winners = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(_) => winners.push(i),
                Err(error) => assert_eq!(error.kind(), ErrorKind::Conflict, "{label}: {error}"),
            }
        }
        assert_eq!(winners.len(), 1, "{label}: exactly one winner");
        assert_eq!(
            store.read_object(&id).await.unwrap().value.expose_secret(),
            format!("racer {}", winners[0])
        );
        assert_eq!(store.list_object_versions(&id).await.unwrap().data.len(), 2);

        // Read-modify-write loops with version_check: every increment lands.
        let mut tasks = Vec::new();
        for _ in 0..RACERS {
            let (store, id) = (store.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let current = store.read_object(&id).await.unwrap();
                    let count = current
                        .value
                        .expose_secret()
                        .strip_prefix("count ")
                        .map_or(0, |n| n.parse::<u32>().unwrap());
                    let version = current.metadata.version_id.unwrap();
                    let next = UpdateObjectRequest::new(format!("count {}", count + 1))
                        .with_version_check(version);
                    match store.update_object(&id, &next).await {
                        Ok(_) => return,
                        Err(error) => assert_eq!(error.kind(), ErrorKind::Conflict, "{error}"),
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            store.read_object(&id).await.unwrap().value.expose_secret(),
            format!("count {RACERS}"),
            "{label}: no lost update"
        );
        let versions = store.list_object_versions(&id).await.unwrap().data;
        assert_eq!(versions.len(), 2 + RACERS, "{label}");
        assert_eq!(versions.iter().filter(|v| v.current_version).count(), 1);
        let unique: HashSet<&str> = versions.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(unique.len(), versions.len());
    }
}
