"""Benchmark driver for the official WorkOS Python SDK (workos 10.8.0 from
tests/compat/pydeps): encrypt+decrypt pairs against a key server.

Usage: python3 tests/compat/bench/python.py < request.json

Reads ONE JSON object on stdin:
  {"base_url", "api_key", "count", "concurrency", "size", "warmup"?}
and runs `warmup` (default 50) untimed pairs, then `count` timed pairs of
vault.encrypt + vault.decrypt on a `size`-byte ASCII plaintext, with
`concurrency` threads sharing one WorkOSClient (its httpx2 client is
thread-safe; the SDK keeps no per-request state on the client). Prints ONE
JSON object: {"pairs", "seconds", "cpu_seconds"}, where cpu_seconds is this
process's user + system CPU time over the timed pairs
(resource.getrusage(RUSAGE_SELF)). Exit code 2 on a malformed request, 1 on
a failed pair.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from typing import Any, Dict, List

_PYDEPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pydeps")
if os.path.isdir(_PYDEPS) and _PYDEPS not in sys.path:
    sys.path.insert(0, _PYDEPS)

# Loopback only: keep proxy settings away from httpx2.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_var, None)


def die(code: int, message: str) -> None:
    sys.stderr.write(f"bench/python.py: {message}\n")
    sys.exit(code)


try:
    from workos import WorkOSClient
except ImportError as e:  # pragma: no cover - environment problem
    die(2, f"cannot import workos from tests/compat/pydeps: {e} (run `cargo xtask compat`)")


def payload(size: int) -> str:
    """The same bytes as vault_bench::payload: a..z0..9, repeating."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[i % len(alphabet)] for i in range(size))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_pairs(client: WorkOSClient, count: int, concurrency: int, plaintext: str) -> None:
    context = {"organization_id": "org_bench"}
    aad = "user_42"
    lock = threading.Lock()
    state = {"next": 0}
    errors: List[BaseException] = []

    def worker() -> None:
        try:
            while True:
                with lock:
                    if state["next"] >= count or errors:
                        return
                    state["next"] += 1
                ciphertext = client.vault.encrypt(
                    data=plaintext, key_context=context, associated_data=aad
                )
                opened = client.vault.decrypt(encrypted_data=ciphertext, associated_data=aad)
                if opened != plaintext:
                    raise RuntimeError("a pair did not round-trip")
        except BaseException as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append(e)

    threads = [
        threading.Thread(target=worker) for _ in range(max(1, min(concurrency, count)))
    ]
    if len(threads) == 1:
        worker()
    else:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


def main() -> None:
    try:
        request: Dict[str, Any] = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    except ValueError as e:
        die(2, f"stdin is not one JSON object: {e}")
    for name in ("base_url", "api_key"):
        if not isinstance(request.get(name), str):
            die(2, f"{name} (string) is required")
    for name in ("count", "concurrency", "size"):
        value = request.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            die(2, f"{name} (integer) is required")
    warmup = request.get("warmup", 50)

    # The SDK's defaults otherwise (retries on, as ours).
    client = WorkOSClient(api_key=request["api_key"], base_url=request["base_url"])
    plaintext = payload(request["size"])
    try:
        run_pairs(client, warmup, request["concurrency"], plaintext)
        cpu = cpu_seconds()
        start = time.perf_counter()
        run_pairs(client, request["count"], request["concurrency"], plaintext)
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu
    except Exception as e:  # noqa: BLE001
        die(1, f"a pair failed: {type(e).__name__}: {e}")
    sys.stdout.write(
        json.dumps({"pairs": request["count"], "seconds": seconds, "cpu_seconds": cpu}) + "\n"
    )


if __name__ == "__main__":
    main()
