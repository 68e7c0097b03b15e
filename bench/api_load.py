"""Load for the API benchmark: signed, verified requests from several client processes, and
the same traffic against a static-file server as the floor.

The catalog load is a lean consumer: the standard library's HTTP client on keep-alive
connections, each request signed and each response verified by the same code the hub's
client uses (api.signing, api.verify), without `requests`' per-request machinery. On two
cores the load generator takes its CPU from the hub's share; each client process reports
what it spent, so the report can say how the machine was divided."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from requests.structures import CaseInsensitiveDict

from api.client import HubClient
from api.signing import sign_request
from api.verify import verify_response
from bench.api_setup import Identity
from tests.api.lake import FEED

CHUNK = 1 << 20
WARM_UP = 5  # untimed requests per connection (a hub's first catalog request loads its caches)


def _client(url: str, identity: Identity, jwks: dict[str, Any] | None = None) -> HubClient:
    key = load_pem_private_key(identity.private_pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    client = HubClient(url, identity.key_id, key, jwks, retries=0)
    # No proxy look-up per request (requests scans the environment each time): the client's
    # CPU is taken from the same two cores as the hub's.
    client._session.trust_env = False
    return client


def _summary(latencies: list[float], errors: int, seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0
    return {
        "requests": len(ordered),
        "rps": len(ordered) / seconds,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else 0.0,
        "p99_ms": p99 * 1000,
        "errors": errors,
    }


def _threads(work: Any, threads: int) -> tuple[list[float], int]:
    results: list[tuple[list[float], int]] = []
    workers = [threading.Thread(target=lambda n=n: results.append(work(n))) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [x for latencies, _ in results for x in latencies], sum(e for _, e in results)


def _start_together(warm: Any, go: Any) -> float:
    """Tell the parent this process is ready, wait for every other one; the CPU clock's start."""
    warm.put(os.getpid())
    go.wait()
    return time.process_time()


class _Request:
    """What signing and verification read of a request: method, absolute URL, header fields."""

    def __init__(self, method: str, url: str) -> None:
        self.method, self.url = method, url
        self.headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()


class _Response:
    """What verification reads of a response (as `requests.Response` offers it)."""

    def __init__(self, answer: http.client.HTTPResponse, body: bytes, request: _Request) -> None:
        self.status_code = answer.status
        self.headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(answer.getheaders())
        self.content = body
        self.request = request


def _catalog_process(url: str, identity: Identity, threads: int, seconds: float, warm: Any, go: Any, out: Any) -> None:
    key = load_pem_private_key(identity.private_pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    with _client(url, identity) as client:
        jwks = client.jwks  # fetched and checked once, outside the clock
    parts = urlsplit(url)
    target = url + "/v1/feeds"

    def catalog(connection: http.client.HTTPConnection) -> None:
        request = _Request("GET", target)
        sign_request(request, identity.key_id, key)
        connection.request("GET", "/v1/feeds", headers=dict(request.headers))
        answer = connection.getresponse()
        response = _Response(answer, answer.read(), request)
        verify_response(response, jwks)  # type: ignore[arg-type]  # signature and digest
        if response.status_code != 200 or not json.loads(response.content)["feeds"]:
            raise ValueError(f"catalog answered {response.status_code}")

    connections = [
        http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30) for _ in range(threads)
    ]
    for connection in connections:
        for _ in range(WARM_UP):  # outside the clock: the hub's processes have loaded their caches
            catalog(connection)

    def work(n: int) -> tuple[list[float], int]:
        latencies, errors, connection = [], 0, connections[n]
        deadline = time.perf_counter() + seconds
        while (start := time.perf_counter()) < deadline:
            try:
                catalog(connection)
                latencies.append(time.perf_counter() - start)
            except Exception:
                errors += 1
                connection.close()  # a fresh connection for the next request
        connection.close()
        return latencies, errors

    cpu = _start_together(warm, go)
    latencies, errors = _threads(work, threads)
    out.put((latencies, errors, time.process_time() - cpu))


def _static_process(url: str, threads: int, seconds: float, warm: Any, go: Any, out: Any) -> None:
    cpu = _start_together(warm, go)

    def work(n: int) -> tuple[list[float], int]:
        latencies, errors = [], 0
        with requests.Session() as session:
            session.trust_env = False
            deadline = time.perf_counter() + seconds
            while (start := time.perf_counter()) < deadline:
                if session.get(url, timeout=30).status_code == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1
        return latencies, errors

    latencies, errors = _threads(work, threads)
    out.put((latencies, errors, time.process_time() - cpu))


def _run_processes(
    target: Any, args: tuple[Any, ...], processes: int, seconds: float, on_start: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Run the load in `processes` processes, started together once all are ready (warmed up);
    `on_start` runs just before (the caller samples the hub's CPU there)."""
    context = multiprocessing.get_context("spawn")
    out, warm, go = context.Queue(), context.Queue(), context.Event()
    started = [context.Process(target=target, args=(*args, warm, go, out)) for _ in range(processes)]
    for process in started:
        process.start()
    for _ in started:
        warm.get()
    if on_start is not None:
        on_start()
    go.set()
    results = [out.get() for _ in started]
    for process in started:
        process.join()
    summary = _summary([x for latencies, _, _ in results for x in latencies], sum(e for _, e, _ in results), seconds)
    summary["client_cpu_seconds"] = sum(cpu for _, _, cpu in results)  # the load phase only
    return summary


def catalog_load(
    url: str,
    identity: Identity,
    processes: int,
    threads: int,
    seconds: float,
    on_start: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Signed, verified catalog requests from `processes` × `threads` clients for `seconds`."""
    return _run_processes(_catalog_process, (url, identity, threads, seconds), processes, seconds, on_start)


def fetch_static(url: str, processes: int, clients: int, seconds: float) -> dict[str, Any]:
    """The floor of a load test: the same bytes from the static server, no signing, no verifying."""
    return _run_processes(_static_process, (url, clients // processes, seconds), processes, seconds)


def download_static(url: str, rows: int, dest: Path | None = None) -> dict[str, Any]:
    """The floor of a stream: one file from the static server, read whole (and, given `dest`,
    written and synced to disk as a consumer keeps it, the hub's client doing the same)."""
    start = time.perf_counter()
    with requests.get(url, stream=True, timeout=60) as response:
        if dest is None:
            size = sum(len(chunk) for chunk in response.iter_content(CHUNK))
        else:
            with open(dest, "wb") as file:
                size = sum(file.write(chunk) for chunk in response.iter_content(CHUNK))
                file.flush()
                os.fsync(file.fileno())
    elapsed = time.perf_counter() - start
    return {"bytes": size, "seconds": elapsed, "rows_per_s": rows / elapsed}


def stream_ndjson(url: str, identity: Identity, jwks: dict[str, Any], rows: int) -> dict[str, Any]:
    """Every row of the feed in verified ndjson pages of the largest size allowed."""
    page, seen, cursor = 10_000, 0, None
    with _client(url, identity, jwks) as client:
        start = time.perf_counter()
        while True:
            batch, cursor = client.records_ndjson(FEED, cursor=cursor, limit=page)
            if not batch:
                break
            seen += len(batch)
        elapsed = time.perf_counter() - start
    return {"rows": seen, "page": page, "seconds": elapsed, "rows_per_s": seen / elapsed}


def stream_parquet(
    url: str, identity: Identity, jwks: dict[str, Any], partition_id: str, rows: int, dest: Path
) -> dict[str, Any]:
    """The large partition streamed to `dest` and verified against its digest and manifest."""
    with _client(url, identity, jwks) as client:
        start = time.perf_counter()
        download = client.download_partition(FEED, partition_id, dest)
        elapsed = time.perf_counter() - start
    assert download.rows == rows
    return {"seconds": elapsed, "rows_per_s": rows / elapsed}


def catalog_body(url: str, identity: Identity) -> bytes:
    """The catalog's bytes as the hub serves them (for the static floor)."""
    with _client(url, identity) as client:
        return client._get("/v1/feeds").content
