"""Cross-SDK compatibility driver for the official WorkOS Python SDK.

Usage: python3 tests/compat/python/driver.py < request.json

The SDK is loaded from tests/compat/pydeps (the driver puts that folder first
on sys.path itself; PYTHONPATH=tests/compat/pydeps works too).

Reads ONE JSON request object on stdin and writes ONE JSON object on stdout.
Exit codes: 0 on success and on SDK errors (reported as
{"error", "error_type", ...}); 2 on a malformed request or a missing SDK.
See README.md beside this folder for the request format.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List, Optional


class UsageError(Exception):
    pass


def die(message: str) -> "None":
    sys.stderr.write(f"driver.py: {message}\n")
    sys.exit(2)


# The pinned SDK lives in tests/compat/pydeps (installed there with
# `pip install --target`); put it first so it wins over any other install.
_PYDEPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pydeps")
if os.path.isdir(_PYDEPS) and _PYDEPS not in sys.path:
    sys.path.insert(0, _PYDEPS)

# The driver only talks to a local server: keep proxy settings from the
# environment away from the SDK's HTTP client (httpx2 honours them).
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_var, None)

try:
    from workos import WorkOSClient
except ImportError as e:  # pragma: no cover - environment problem
    die(
        f"cannot import workos: {e} (install with `python3 -m pip install --target "
        "tests/compat/pydeps -r tests/compat/python/requirements.txt` and set PYTHONPATH)"
    )


def require_str(op: Dict[str, Any], name: str) -> str:
    value = op.get(name)
    if not isinstance(value, str):
        raise UsageError(f"{op.get('op')}: {name} (string) is required")
    return value


def optional_str(op: Dict[str, Any], name: str) -> Optional[str]:
    value = op.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"{op.get('op')}: {name} must be a string or null")
    return value


def require_obj(op: Dict[str, Any], name: str) -> Dict[str, Any]:
    value = op.get(name)
    if not isinstance(value, dict):
        raise UsageError(f"{op.get('op')}: {name} (object) is required")
    return value


def describe_error(e: BaseException) -> Dict[str, Any]:
    message = str(e) or repr(e)
    out: Dict[str, Any] = {"error": message, "error_type": type(e).__name__}
    status = getattr(e, "status_code", None)
    if isinstance(status, int):
        out["status"] = status
    request_id = getattr(e, "request_id", None)
    if isinstance(request_id, str) and request_id:
        out["request_id"] = request_id
    sdk_message = getattr(e, "message", None)
    if isinstance(sdk_message, str) and sdk_message != message:
        out["message"] = sdk_message
    return out


def call(fn):  # type: ignore[no-untyped-def]
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - every SDK failure is reported
        return describe_error(e)


def pair(r: Any) -> Dict[str, Any]:
    return {
        "context": r.context,
        "data_key": r.data_key,
        "encrypted_keys": r.encrypted_keys,
        "id": r.id,
    }


def run_op(client: WorkOSClient, op: Any) -> Dict[str, Any]:
    if not isinstance(op, dict):
        raise UsageError("each op must be an object")
    vault = client.vault
    name = op.get("op")
    if name == "create_data_key":
        context = require_obj(op, "context")
        return call(lambda: pair(vault.create_data_key(context=context)))
    if name == "decrypt_data_key":
        keys = require_str(op, "keys")

        def decrypt_data_key() -> Dict[str, Any]:
            r = vault.create_decrypt(keys=keys)
            return {"data_key": r.data_key, "id": r.id}

        return call(decrypt_data_key)
    if name == "rekey":
        context = require_obj(op, "context")
        encrypted_keys = require_str(op, "encrypted_keys")
        return call(
            lambda: pair(vault.create_rekey(context=context, encrypted_keys=encrypted_keys))
        )
    if name == "encrypt":
        context = require_obj(op, "context")
        plaintext = require_str(op, "plaintext")
        aad = optional_str(op, "aad")
        return call(
            lambda: {
                "ciphertext": vault.encrypt(
                    data=plaintext, key_context=context, associated_data=aad
                )
            }
        )
    if name == "decrypt":
        ciphertext = require_str(op, "ciphertext")
        aad = optional_str(op, "aad")
        return call(
            lambda: {
                "plaintext": vault.decrypt(encrypted_data=ciphertext, associated_data=aad)
            }
        )
    # The objects (key-value) API.
    if name == "create_object":
        obj_name = require_str(op, "name")
        value = require_str(op, "value")
        context = require_obj(op, "context")

        def create_object() -> Dict[str, Any]:
            m = vault.create_kv(key_context=context, name=obj_name, value=value)
            return {
                "id": m.id,
                "version_id": m.version_id,
                "environment_id": m.environment_id,
                "key_id": m.key_id,
                "context": dict(m.context) if isinstance(m.context, dict) else m.context,
                "updated_at": str(m.updated_at),
            }

        return call(create_object)
    if name in ("read_object", "read_object_by_name", "describe_object"):
        key = "name" if name == "read_object_by_name" else "id"
        arg = require_str(op, key)

        def read() -> Dict[str, Any]:
            if name == "read_object":
                o = vault.get_kv(arg)
            elif name == "read_object_by_name":
                o = vault.get_name(arg)
            else:
                o = vault.list_kv_metadata(arg)
            out = {"id": o.id, "name": o.name, "version_id": o.metadata.version_id}
            value = getattr(o, "value", None)
            if value is not None:
                out["value"] = value
            return out

        return call(read)
    if name == "update_object":
        obj_id = require_str(op, "id")
        value = require_str(op, "value")
        check = optional_str(op, "version_check")

        def update() -> Dict[str, Any]:
            if check is None:
                o = vault.update_kv(obj_id, value=value)
            else:
                o = vault.update_kv(obj_id, value=value, version_check=check)
            return {"id": o.id, "name": o.name, "version_id": o.metadata.version_id}

        return call(update)
    if name == "delete_object":
        obj_id = require_str(op, "id")
        check = optional_str(op, "version_check")

        def delete() -> Dict[str, Any]:
            vault.delete_kv(obj_id, version_check=check)
            return {"deleted": True}

        return call(delete)
    if name == "list_object_versions":
        obj_id = require_str(op, "id")

        def versions() -> Dict[str, Any]:
            r = vault.list_kv_versions(obj_id)
            return {
                "versions": [
                    {
                        "id": v.id,
                        "current_version": v.current_version,
                        "size": v.size,
                        "etag": v.etag,
                        "created_at": str(v.created_at),
                    }
                    for v in r.data
                ]
            }

        return call(versions)
    if name == "list_objects":
        kwargs: Dict[str, Any] = {}
        for key in ("before", "after", "order", "search", "updated_after"):
            value = optional_str(op, key)
            if value is not None:
                kwargs[key] = value
        if isinstance(op.get("limit"), int):
            kwargs["limit"] = op["limit"]

        def list_objects() -> Dict[str, Any]:
            page = vault.list_kv(**kwargs)
            if op.get("all"):
                return {"names": [o.name for o in page.auto_paging_iter()]}
            meta = page.list_metadata
            return {
                "names": [o.name for o in page.data],
                "before": meta.before,
                "after": meta.after,
            }

        return call(list_objects)
    if name == "batch":
        ops = op.get("ops")
        if not isinstance(ops, list):
            raise UsageError("batch: ops (array) is required")
        results: List[Dict[str, Any]] = []
        for inner in ops:
            if isinstance(inner, dict) and inner.get("op") == "batch":
                raise UsageError("batch: nested batch is not allowed")
            results.append(run_op(client, inner))
        return {"results": results}
    raise UsageError(f"unknown op {json.dumps(name)}")


def main() -> None:
    try:
        request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    except ValueError as e:
        die(f"stdin is not one JSON object: {e}")
    if not isinstance(request, dict):
        die("stdin must hold a JSON object")
    try:
        base_url = require_str(request, "base_url")
        api_key = require_str(request, "api_key")
        # Retries are off by default so failures are deterministic and fast;
        # pass "max_retries": null for the SDK's default (3), or a number.
        max_retries = request.get("max_retries", 0)
        kwargs: Dict[str, Any] = {"api_key": api_key, "base_url": base_url}
        if max_retries is not None:
            if not isinstance(max_retries, int) or isinstance(max_retries, bool):
                raise UsageError("max_retries must be an integer or null")
            kwargs["max_retries"] = max_retries
        client = WorkOSClient(**kwargs)
        output = run_op(client, request)
    except UsageError as e:
        die(str(e))
    # ASCII-only JSON (\u escapes): independent of the locale's stdout encoding.
    sys.stdout.write(json.dumps(output) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
