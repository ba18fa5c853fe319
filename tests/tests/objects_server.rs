//! The objects API (`/vault/v1/kv...`) of `vault-server` over a real SQL
//! store (SQLite in a temporary directory), over real TCP on 127.0.0.1:0:
//! WorkOS's statuses and bodies, and bad input refused with nothing stored.

use std::sync::Arc;

use hyper::Method;
use serde_json::{json, Value};
use vault_server::{Server, ServerConfig};
use vault_store::ObjectStore;
use vault_tests::{raw_request, start_server, start_server_with, RawResponse, API_KEY};

struct Objects {
    server: Server,
    _dir: tempfile::TempDir,
}

async fn objects_server() -> Objects {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = ObjectStore::open_sqlite(
        &dir.path().join("objects.db"),
        vault_tests::backing_service(),
    )
    .await
    .expect("open the store");
    let server = start_server_with(ServerConfig::new().objects(Arc::new(store))).await;
    Objects { server, _dir: dir }
}

async fn call(
    server: &Server,
    method: Method,
    path: &str,
    body: impl Into<Vec<u8>>,
) -> RawResponse {
    let response = raw_request(server, method, path, Some(API_KEY), body, false).await;
    assert_eq!(
        response.header("content-type"),
        "application/json",
        "{path}"
    );
    assert!(response.header("x-request-id").starts_with("req_"));
    response
}

async fn create(server: &Server, name: &str, value: &str) -> RawResponse {
    let body = json!({"name": name, "value": value, "key_context": {"organization_id": "org_1"}});
    call(server, Method::POST, "/vault/v1/kv", body.to_string()).await
}

async fn count(server: &Server) -> usize {
    let list = call(server, Method::GET, "/vault/v1/kv?limit=100", "").await;
    assert_eq!(list.status, 200);
    list.json()["data"].as_array().expect("data").len()
}

#[tokio::test]
async fn all_eight_endpoints_answer_as_workos_does() {
    let objects = objects_server().await;
    let server = &objects.server;

    let created = create(server, "billing: api token", "first").await;
    assert_eq!(created.status, 201, "{:?}", created.json());
    let metadata = created.json();
    let id = metadata["id"].as_str().expect("id").to_owned();
    let v1 = metadata["version_id"]
        .as_str()
        .expect("version_id")
        .to_owned();
    for field in ["environment_id", "key_id", "updated_at"] {
        assert!(metadata[field].is_string(), "{field}: {metadata}");
    }
    assert!(metadata["updated_by"]["id"].is_string());
    assert!(metadata["updated_by"]["name"].is_string());
    assert_eq!(metadata["context"], json!({"organization_id": "org_1"}));
    assert!(metadata.get("value").is_none());

    let duplicate = create(server, "billing: api token", "other").await;
    assert_eq!(duplicate.status, 409);
    assert!(duplicate.error().contains("already exists"));

    let read = call(server, Method::GET, &format!("/vault/v1/kv/{id}"), "").await;
    assert_eq!(read.status, 200);
    let object = read.json();
    assert_eq!(object["value"], "first");
    assert_eq!(object["name"], "billing: api token");
    assert_eq!(object["metadata"], metadata);

    let by_name = call(
        server,
        Method::GET,
        "/vault/v1/kv/name/billing%3A%20api%20token",
        "",
    )
    .await;
    assert_eq!(by_name.status, 200);
    assert_eq!(by_name.json()["id"], id.as_str());

    let list = call(
        server,
        Method::GET,
        "/vault/v1/kv?limit=5&order=asc&search=billing",
        "",
    )
    .await;
    assert_eq!(list.status, 200);
    let list = list.json();
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][0]["name"], "billing: api token");
    assert!(list["data"][0]["updated_at"].is_string());
    assert!(list["data"][0].get("value").is_none());
    assert_eq!(
        list["list_metadata"],
        json!({"before": null, "after": null})
    );

    let update = json!({"value": "second", "version_check": v1}).to_string();
    let updated = call(
        server,
        Method::PUT,
        &format!("/vault/v1/kv/{id}"),
        update.clone(),
    )
    .await;
    assert_eq!(updated.status, 201);
    let updated = updated.json();
    assert!(updated.get("value").is_none(), "{updated}");
    assert_eq!(updated["name"], "billing: api token");
    let v2 = updated["metadata"]["version_id"]
        .as_str()
        .expect("version")
        .to_owned();
    assert_ne!(v1, v2);
    let stale = call(server, Method::PUT, &format!("/vault/v1/kv/{id}"), update).await;
    assert_eq!(stale.status, 409);

    let described = call(
        server,
        Method::GET,
        &format!("/vault/v1/kv/{id}/metadata"),
        "",
    )
    .await;
    assert_eq!(described.status, 200);
    assert_eq!(described.json(), updated);

    let versions = call(
        server,
        Method::GET,
        &format!("/vault/v1/kv/{id}/versions"),
        "",
    )
    .await;
    assert_eq!(versions.status, 200);
    let versions = versions.json();
    let data = versions["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], v2.as_str(), "newest first");
    assert_eq!(data[0]["current_version"], true);
    assert_eq!(data[1]["current_version"], false);
    assert_eq!(data[1]["size"], 5);
    assert!(data[0]["etag"].is_string() && data[0]["created_at"].is_string());

    let stale_delete = call(
        server,
        Method::DELETE,
        &format!("/vault/v1/kv/{id}?version_check={v1}"),
        "",
    )
    .await;
    assert_eq!(stale_delete.status, 409);
    let deleted = call(
        server,
        Method::DELETE,
        &format!("/vault/v1/kv/{id}?version_check={v2}"),
        "",
    )
    .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        deleted.json(),
        json!({"name": "billing: api token", "success": true})
    );
    for path in [
        format!("/vault/v1/kv/{id}"),
        format!("/vault/v1/kv/{id}/metadata"),
        format!("/vault/v1/kv/{id}/versions"),
        "/vault/v1/kv/name/billing%3A%20api%20token".to_owned(),
    ] {
        let gone = call(server, Method::GET, &path, "").await;
        assert_eq!(gone.status, 404, "{path}");
        assert_eq!(gone.error(), "object not found");
    }
    let gone = call(server, Method::DELETE, &format!("/vault/v1/kv/{id}"), "").await;
    assert_eq!(gone.status, 404);
    let metrics = server.metrics().render();
    assert!(metrics.contains("route=\"objects\""), "{metrics}");
    assert!(metrics.contains("route=\"object_versions\""));
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_nothing_is_stored() {
    let objects = objects_server().await;
    let server = &objects.server;
    let context = json!({"organization_id": "org_1"});
    let bodies: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            json!({"name": "a/b", "value": "v", "key_context": context})
                .to_string()
                .into(),
            400,
            "/",
        ),
        (
            json!({"name": "..", "value": "v", "key_context": context})
                .to_string()
                .into(),
            400,
            "..",
        ),
        (
            json!({"name": "a%2Fb", "value": "v", "key_context": context})
                .to_string()
                .into(),
            400,
            "%",
        ),
        (
            json!({"name": "bell\u{7}", "value": "v", "key_context": context})
                .to_string()
                .into(),
            400,
            "control",
        ),
        (
            json!({"name": "n".repeat(201), "value": "v", "key_context": context})
                .to_string()
                .into(),
            400,
            "201 characters",
        ),
        (
            json!({"name": "ok", "value": "v", "key_context": context, "extra": 1})
                .to_string()
                .into(),
            400,
            "unknown field",
        ),
        (
            json!({"name": "ok", "value": 1, "key_context": context})
                .to_string()
                .into(),
            400,
            "invalid type",
        ),
        (
            json!({"name": ["ok"], "value": "v", "key_context": context})
                .to_string()
                .into(),
            400,
            "invalid type",
        ),
        (
            json!({"name": "ok", "value": "v", "key_context": "org"})
                .to_string()
                .into(),
            400,
            "invalid type",
        ),
        (
            json!({"name": "ok", "value": "v"}).to_string().into(),
            400,
            "missing field",
        ),
        (
            json!({"name": "ok", "value": "v", "key_context": {}})
                .to_string()
                .into(),
            422,
            "empty",
        ),
        (
            json!({"name": "ok", "value": "v", "key_context": {"n": 1}})
                .to_string()
                .into(),
            422,
            "must be a string",
        ),
        (
            b"{\"name\":\"ok\",\"value\":\"\xff\xfe\",\"key_context\":{\"o\":\"1\"}}".to_vec(),
            400,
            "not valid JSON",
        ),
        (
            br#"{"name":"ok","value":"\ud800","key_context":{"o":"1"}}"#.to_vec(),
            400,
            "not valid JSON",
        ),
        (
            json!({"name": "huge", "value": "x".repeat(600 * 1024), "key_context": context})
                .to_string()
                .into(),
            400,
            "at most 524288",
        ),
        (
            json!({"name": "huger", "value": "x".repeat(2 << 20), "key_context": context})
                .to_string()
                .into(),
            413,
            "over",
        ),
    ];
    for (body, status, hint) in bodies {
        let answer = call(server, Method::POST, "/vault/v1/kv", body).await;
        assert_eq!(answer.status, status, "{hint}: {}", answer.error());
        assert!(answer.error().contains(hint), "{hint}: {}", answer.error());
        assert!(!answer.error().contains("xxxx"));
    }
    assert_eq!(count(server).await, 0, "nothing stored");

    let good = create(server, "good", "v").await.json();
    let id = good["id"].as_str().expect("id").to_owned();
    for (method, path, status) in [
        (Method::GET, "/vault/v1/kv/obj_1".to_owned(), 400),
        (Method::GET, "/vault/v1/kv/..".to_owned(), 400),
        (Method::GET, "/vault/v1/kv/%2E%2E".to_owned(), 400),
        (Method::GET, "/vault/v1/kv/%ZZ".to_owned(), 400),
        (Method::DELETE, "/vault/v1/kv/not-an-id".to_owned(), 400),
        (Method::GET, "/vault/v1/kv/name/a%2Fb".to_owned(), 400),
        (Method::GET, "/vault/v1/kv/name/a/b".to_owned(), 400),
        (Method::GET, "/vault/v1/kv/name/..".to_owned(), 400),
        (Method::GET, "/vault/v1/kv/name/%FF".to_owned(), 400),
        (
            Method::GET,
            format!("/vault/v1/kv/name/{}", "n".repeat(201)),
            400,
        ),
        (Method::GET, "/vault/v1/kv?colour=red".to_owned(), 400),
        (Method::GET, "/vault/v1/kv?limit=0".to_owned(), 400),
        (Method::GET, "/vault/v1/kv?order=sideways".to_owned(), 400),
        (
            Method::GET,
            "/vault/v1/kv?search=%7B%22name%22%3A%22x%22%7D".to_owned(),
            400,
        ),
        (Method::GET, "/vault/v1/kv?after=junk".to_owned(), 400),
        (
            Method::GET,
            "/vault/v1/kv?updatedAfter=yesterday".to_owned(),
            400,
        ),
        (
            Method::DELETE,
            format!("/vault/v1/kv/{id}?version_check=v1"),
            400,
        ),
        (
            Method::DELETE,
            format!("/vault/v1/kv/{id}?query%5Bversion_check%5D=x"),
            400,
        ),
        (Method::GET, format!("/vault/v1/kv/{id}/metadata?x=1"), 400),
    ] {
        let answer = call(server, method.clone(), &path, "").await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.error());
    }
    for (body, status) in [
        (json!({"value": "new", "extra": true}).to_string(), 400),
        (json!({"value": 5}).to_string(), 400),
        (json!({"value": "new", "version_check": 3}).to_string(), 400),
        (
            json!({"value": "new", "version_check": "not-a-version"}).to_string(),
            400,
        ),
        (json!({"value": "x".repeat(600 * 1024)}).to_string(), 400),
        ("{".to_owned(), 400),
    ] {
        let answer = call(server, Method::PUT, &format!("/vault/v1/kv/{id}"), body).await;
        assert_eq!(answer.status, status, "{}", answer.error());
    }
    let versions = call(
        server,
        Method::GET,
        &format!("/vault/v1/kv/{id}/versions"),
        "",
    )
    .await;
    assert_eq!(
        versions.json()["data"].as_array().map(Vec::len),
        Some(1),
        "no update stored"
    );
    assert_eq!(count(server).await, 1);
}

#[tokio::test]
async fn object_routes_share_auth_methods_and_say_when_disabled() {
    let objects = objects_server().await;
    let server = &objects.server;
    let anonymous = raw_request(server, Method::GET, "/vault/v1/kv", None, "", false).await;
    assert_eq!(anonymous.status, 401);
    let wrong = raw_request(
        server,
        Method::PATCH,
        "/vault/v1/kv/obj_1",
        Some(API_KEY),
        "",
        false,
    )
    .await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), "GET, PUT, DELETE");
    let unknown = call(server, Method::GET, "/vault/v1/kv/a/b", "").await;
    assert_eq!(unknown.status, 404);

    let keys_only = start_server().await;
    let disabled = call(&keys_only, Method::GET, "/vault/v1/kv", "").await;
    assert_eq!(disabled.status, 404);
    assert!(
        disabled.error().contains("objects API is not enabled"),
        "{}",
        disabled.error()
    );
    let value: Value = disabled.json();
    assert!(value["error"].is_string());
}

#[tokio::test]
async fn the_http_client_speaks_every_endpoint_with_the_key_calls_retries() {
    use vault_api::object::{
        CreateObjectRequest, ListObjectsOptions, ObjectName, ObjectService, Order,
        UpdateObjectRequest,
    };
    use vault_api::ErrorKind;

    let objects = objects_server().await;
    let server = &objects.server;
    let client = vault_tests::client_for(server).build().expect("a client");
    let context = vault_tests::context("org_1");
    let mut ids = Vec::new();
    for i in 0..5 {
        let name = ObjectName::new(format!("team a: secret {i}")).expect("name");
        let created = client
            .create_object(&CreateObjectRequest::new(
                name,
                format!("value {i}"),
                context.clone(),
            ))
            .await
            .expect("create");
        ids.push(created.id);
    }
    let duplicate = client
        .create_object(&CreateObjectRequest::new(
            ObjectName::new("team a: secret 0").expect("name"),
            "x",
            context.clone(),
        ))
        .await
        .expect_err("a duplicate");
    assert_eq!(duplicate.kind(), ErrorKind::Conflict);
    assert_eq!(duplicate.status(), Some(409));
    assert!(duplicate.request_id().is_some());

    let object = client
        .read_object_by_name("team a: secret 3")
        .await
        .expect("by name");
    assert_eq!(object.id, ids[3]);
    assert_eq!(object.value.expose_secret(), "value 3");

    // Pages of two, oldest first, through the cursors.
    let mut seen = Vec::new();
    let mut options = ListObjectsOptions::new()
        .limit(2)
        .order(Order::Asc)
        .search("team a");
    loop {
        let page = client.list_objects(&options).await.expect("a page");
        seen.extend(page.data.into_iter().map(|o| o.id));
        match page.list_metadata.after {
            Some(after) => {
                options = ListObjectsOptions::new()
                    .limit(2)
                    .order(Order::Asc)
                    .search("team a")
                    .after(after)
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);

    // A 503 first: the update is retried with the same idempotency key.
    let v1 = object.metadata.version_id.clone().expect("version");
    server.faults().reset_counters();
    server.faults().fail_next(1, 503, None);
    let updated = client
        .update_object(
            &ids[3],
            &UpdateObjectRequest::new("new").with_version_check(&v1),
        )
        .await
        .expect("update after a retry");
    let keys = server.faults().idempotency_keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0], keys[1]);
    let stale = client
        .update_object(
            &ids[3],
            &UpdateObjectRequest::new("lost").with_version_check(&v1),
        )
        .await
        .expect_err("stale");
    assert_eq!(stale.kind(), ErrorKind::Conflict);
    let described = client.describe_object(&ids[3]).await.expect("describe");
    assert_eq!(described, updated);
    let versions = client
        .list_object_versions(&ids[3])
        .await
        .expect("versions");
    assert_eq!(versions.data.len(), 2);
    assert!(versions.data[0].current_version);
    assert_eq!(
        client
            .delete_object(&ids[3], Some(&v1))
            .await
            .expect_err("stale")
            .kind(),
        ErrorKind::Conflict
    );
    let deleted = client
        .delete_object(&ids[3], updated.metadata.version_id.as_deref())
        .await
        .expect("delete");
    assert_eq!(deleted.name, "team a: secret 3");
    let gone = client.read_object(&ids[3]).await.expect_err("gone");
    assert_eq!(gone.kind(), ErrorKind::NotFound);
    assert_eq!(
        client
            .read_object("obj_1")
            .await
            .expect_err("not an id")
            .kind(),
        ErrorKind::InvalidRequest
    );
    assert!(!format!("{object:?}").contains("value 3"));
}
