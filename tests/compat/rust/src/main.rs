//! Cross-SDK compatibility driver for the official WorkOS Rust crate
//! `workos` (pinned in this folder's `Cargo.toml` and `Cargo.lock`).
//!
//! Usage: `vault-compat-rust < request.json`
//!
//! Reads ONE JSON request object on stdin and writes ONE JSON object (one
//! line) on stdout, like `tests/compat/node/driver.mjs` and
//! `tests/compat/python/driver.py`; see `tests/compat/README.md`.
//!
//! Exit codes: 0 on success and on SDK errors (reported as
//! `{"error", "error_type", ...}`); 2 on a malformed request.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::ExitCode;

use serde_json::{Map, Value, json};
use workos::vault::{
    CreateDataKeyParams, CreateDecryptParams, CreateKvParams, CreateRekeyParams, DeleteKvParams,
    ListKvParams, UpdateKvParams,
};
use workos::{
    Client, CreateDataKeyRequest, CreateDataKeyResponse, CreateObjectRequest, DecryptRequest,
    ObjectWithoutValue, RekeyRequest, SecretString, UpdateObjectRequest, VaultObject, VaultOrder,
};

/// A malformed request: the test is wrong, not the SDK or the server.
struct Usage(String);

type OpResult = Result<Value, Usage>;

fn main() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        return die(&format!("cannot read stdin: {e}"));
    }
    let request: Value = match serde_json::from_str(&input) {
        Ok(value) => value,
        Err(e) => return die(&format!("stdin is not one JSON object: {e}")),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return die(&format!("cannot start a tokio runtime: {e}")),
    };
    let output = client(&request).and_then(|client| runtime.block_on(run_op(&client, &request)));
    match output {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            match writeln!(stdout, "{output}").and_then(|()| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => die(&format!("cannot write stdout: {e}")),
            }
        }
        Err(Usage(message)) => die(&message),
    }
}

fn die(message: &str) -> ExitCode {
    eprintln!("vault-compat-rust: {message}");
    ExitCode::from(2)
}

/// `Client::builder()` from the request's `base_url`, `api_key` and
/// `max_retries` (default 0; `null` keeps the crate's default of 3, which
/// it applies only to idempotent requests: the vault POSTs are sent once).
fn client(request: &Value) -> Result<Client, Usage> {
    let object = as_object(request, "request")?;
    let base_url = string(object, "request", "base_url")?;
    let api_key = string(object, "request", "api_key")?;
    let mut builder = Client::builder()
        .api_key(api_key)
        // The crate joins with `format!("{base_url}{path}")`.
        .base_url(base_url.trim_end_matches('/'));
    match object.get("max_retries") {
        None => builder = builder.max_retries(0),
        Some(Value::Null) => {}
        Some(value) => {
            let retries = value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| Usage("max_retries must be a small integer or null".into()))?;
            builder = builder.max_retries(retries);
        }
    }
    builder
        .try_build()
        .map_err(|e| Usage(format!("cannot build the client: {e}")))
}

async fn run_op(client: &Client, op: &Value) -> OpResult {
    let object = as_object(op, "each op")?;
    let name = string(object, "op", "op")?;
    if name == "batch" {
        let ops = object
            .get("ops")
            .and_then(Value::as_array)
            .ok_or_else(|| Usage("batch: ops (array) is required".into()))?;
        let mut results = Vec::with_capacity(ops.len());
        for inner in ops {
            if inner.get("op").and_then(Value::as_str) == Some("batch") {
                return Err(Usage("batch: nested batch is not allowed".into()));
            }
            results.push(Box::pin(run_op(client, inner)).await?);
        }
        return Ok(json!({ "results": results }));
    }
    run_single(client, name, object).await
}

/// One SDK call. Arguments are checked before the call, so a usage error is
/// never reported as an SDK error.
async fn run_single(client: &Client, name: &str, op: &Map<String, Value>) -> OpResult {
    let vault = client.vault();
    let result = match name {
        "create_data_key" => {
            let context = context(op, name)?;
            let params = CreateDataKeyParams::new(CreateDataKeyRequest { context });
            vault
                .create_data_key(params)
                .await
                .map(|r| data_key_pair(&r))
        }
        "decrypt_data_key" => {
            let keys = string(op, name, "keys")?.to_owned();
            let params = CreateDecryptParams::new(DecryptRequest { keys });
            vault
                .create_decrypt(params)
                .await
                .map(|r| json!({ "data_key": r.data_key.expose(), "id": r.id }))
        }
        "rekey" => {
            let context = context(op, name)?;
            let encrypted_keys = string(op, name, "encrypted_keys")?.into();
            let params = CreateRekeyParams::new(RekeyRequest {
                context,
                encrypted_keys,
            });
            vault.create_rekey(params).await.map(|r| data_key_pair(&r))
        }
        "encrypt" => {
            let context = context(op, name)?;
            let plaintext = string(op, name, "plaintext")?;
            let aad = aad(op, name)?;
            vault
                .encrypt(plaintext, context, aad)
                .await
                .map(|r| json!({ "ciphertext": r.encrypted_data }))
        }
        "decrypt" => {
            let ciphertext = string(op, name, "ciphertext")?;
            let aad = aad(op, name)?;
            vault
                .decrypt(ciphertext, aad)
                .await
                .map(|plaintext| json!({ "plaintext": plaintext }))
        }
        // The objects (key-value) API.
        "create_object" => {
            let key_context = context(op, name)?;
            let request = CreateObjectRequest {
                key_context,
                name: string(op, name, "name")?.to_owned(),
                value: SecretString::new(string(op, name, "value")?),
            };
            vault
                .create_kv(CreateKvParams::new(request))
                .await
                .map(|m| {
                    json!({
                        "id": m.id,
                        "version_id": m.version_id,
                        "environment_id": m.environment_id,
                        "key_id": m.key_id,
                        "context": m.context,
                        "updated_at": m.updated_at,
                    })
                })
        }
        "read_object" => vault
            .get_kv(string(op, name, "id")?)
            .await
            .map(|o| vault_object(&o)),
        "read_object_by_name" => vault
            .get_name(string(op, name, "name")?)
            .await
            .map(|o| vault_object(&o)),
        "describe_object" => vault
            .list_kv_metadata(string(op, name, "id")?)
            .await
            .map(|o| without_value(&o)),
        "update_object" => {
            let id = string(op, name, "id")?;
            let request = UpdateObjectRequest {
                value: SecretString::new(string(op, name, "value")?),
                version_check: optional(op, name, "version_check")?,
            };
            vault
                .update_kv(id, UpdateKvParams::new(request))
                .await
                .map(|o| without_value(&o))
        }
        "delete_object" => {
            let id = string(op, name, "id")?;
            let params = DeleteKvParams {
                version_check: optional(op, name, "version_check")?,
            };
            vault
                .delete_kv(id, params)
                .await
                .map(|_| json!({ "deleted": true }))
        }
        "list_object_versions" => vault
            .list_kv_versions(string(op, name, "id")?)
            .await
            .map(|r| {
                let versions: Vec<Value> = r
                    .data
                    .iter()
                    .map(|v| {
                        json!({
                            "id": v.id,
                            "current_version": v.current_version,
                            "size": v.size,
                            "etag": v.etag,
                            "created_at": v.created_at,
                        })
                    })
                    .collect();
                json!({ "versions": versions })
            }),
        "list_objects" => {
            let mut params = ListKvParams {
                before: optional(op, name, "before")?,
                after: optional(op, name, "after")?,
                search: optional(op, name, "search")?,
                updated_after: optional(op, name, "updated_after")?,
                ..ListKvParams::default()
            };
            if let Some(limit) = op.get("limit").and_then(Value::as_i64) {
                params.limit = Some(limit);
            }
            params.order = match optional(op, name, "order")?.as_deref() {
                Some("asc") => Some(VaultOrder::Asc),
                Some("desc") => Some(VaultOrder::Desc),
                None => None,
                Some(other) => return Err(Usage(format!("{name}: order {other:?}"))),
            };
            if op.get("all").and_then(Value::as_bool) == Some(true) {
                // Every page, through the `after` cursors.
                let mut names = Vec::new();
                loop {
                    match vault.list_kv(params.clone()).await {
                        Ok(page) => {
                            names.extend(page.data.iter().map(|o| o.name.clone()));
                            match page.list_metadata.after {
                                Some(after) => params.after = Some(after),
                                None => break Ok(json!({ "names": names })),
                            }
                        }
                        Err(e) => break Err(e),
                    }
                }
            } else {
                vault.list_kv(params).await.map(|page| {
                    let names: Vec<&str> = page.data.iter().map(|o| o.name.as_str()).collect();
                    json!({
                        "names": names,
                        "before": page.list_metadata.before,
                        "after": page.list_metadata.after,
                    })
                })
            }
        }
        other => return Err(Usage(format!("unknown op {other:?}"))),
    };
    Ok(result.unwrap_or_else(|e| describe_error(&e)))
}

fn vault_object(o: &VaultObject) -> Value {
    json!({
        "id": o.id,
        "name": o.name,
        "version_id": o.metadata.version_id,
        "value": o.value.expose(),
    })
}

fn without_value(o: &ObjectWithoutValue) -> Value {
    json!({ "id": o.id, "name": o.name, "version_id": o.metadata.version_id })
}

/// An optional string argument (`null` or absent: `None`).
fn optional(object: &Map<String, Value>, op: &str, name: &str) -> Result<Option<String>, Usage> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(Usage(format!("{op}: {name} must be a string or null"))),
    }
}

fn data_key_pair(pair: &CreateDataKeyResponse) -> Value {
    json!({
        "context": pair.context,
        "data_key": pair.data_key.expose(),
        "encrypted_keys": pair.encrypted_keys.expose(),
        "id": pair.id,
    })
}

/// `{"error", "error_type"}` with the `workos::Error` variant as the type,
/// plus `status` and `request_id` for API errors.
fn describe_error(error: &workos::Error) -> Value {
    let error_type = match error {
        workos::Error::Api(_) => "Api",
        workos::Error::Network(_) => "Network",
        workos::Error::Decode(_) => "Decode",
        workos::Error::Builder(_) => "Builder",
        workos::Error::VaultCrypto(_) => "VaultCrypto",
        _ => "Other",
    };
    let mut out = json!({ "error": error.to_string(), "error_type": error_type });
    if let Some(status) = error.status() {
        out["status"] = json!(status);
    }
    if let Some(request_id) = error.request_id() {
        out["request_id"] = json!(request_id);
    }
    out
}

fn as_object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, Usage> {
    value
        .as_object()
        .ok_or_else(|| Usage(format!("{what} must be a JSON object")))
}

fn string<'a>(object: &'a Map<String, Value>, op: &str, name: &str) -> Result<&'a str, Usage> {
    object
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Usage(format!("{op}: {name} (string) is required")))
}

/// The crate takes `associated_data: &str`; `null` (or absent) becomes `""`,
/// which AES-GCM treats exactly as no AAD.
fn aad<'a>(object: &'a Map<String, Value>, op: &str) -> Result<&'a str, Usage> {
    match object.get("aad") {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(aad)) => Ok(aad),
        Some(_) => Err(Usage(format!("{op}: aad must be a string or null"))),
    }
}

/// The crate's context is `HashMap<String, String>`: only string values.
fn context(object: &Map<String, Value>, op: &str) -> Result<HashMap<String, String>, Usage> {
    let context = object
        .get("context")
        .and_then(Value::as_object)
        .ok_or_else(|| Usage(format!("{op}: context (object) is required")))?;
    context
        .iter()
        .map(|(key, value)| match value {
            Value::String(value) => Ok((key.clone(), value.clone())),
            _ => Err(Usage(format!("{op}: context values must be strings"))),
        })
        .collect()
}
