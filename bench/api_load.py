"""Load for the API benchmark: signed, verified requests from several client processes, and
the same traffic against a static-file server as the floor."""

from __future__ import annotations

import multiprocessing
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from api.client import HubClient
from bench.api_setup import Identity
from tests.api.lake import FEED

CHUNK = 1 << 20


def _client(url: str, identity: Identity, jwks: dict[str, Any] | None = None) -> HubClient:
    key = load_pem_private_key(identity.private_pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return HubClient(url, identity.key_id, key, jwks, retries=0)


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
    workers = [threading.Thread(target=lambda: results.append(work())) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [x for latencies, _ in results for x in latencies], sum(e for _, e in results)


def _catalog_process(url: str, identity: Identity, threads: int, seconds: float, out: Any) -> None:
    def work() -> tuple[list[float], int]:
        latencies, errors = [], 0
        with _client(url, identity) as client:
            client.catalog()  # fetches and checks the JWKS once, outside the clock
            deadline = time.perf_counter() + seconds
            while (start := time.perf_counter()) < deadline:
                try:
                    client.catalog()  # signed; the response's signature and digest verified
                    latencies.append(time.perf_counter() - start)
                except Exception:
                    errors += 1
        return latencies, errors

    out.put(_threads(work, threads))


def _static_process(url: str, threads: int, seconds: float, out: Any) -> None:
    def work() -> tuple[list[float], int]:
        latencies, errors = [], 0
        with requests.Session() as session:
            deadline = time.perf_counter() + seconds
            while (start := time.perf_counter()) < deadline:
                if session.get(url, timeout=30).status_code == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1
        return latencies, errors

    out.put(_threads(work, threads))


def _run_processes(target: Any, args: tuple[Any, ...], processes: int, seconds: float) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    started = [context.Process(target=target, args=(*args, out)) for _ in range(processes)]
    for process in started:
        process.start()
    results = [out.get() for _ in started]
    for process in started:
        process.join()
    return _summary([x for latencies, _ in results for x in latencies], sum(e for _, e in results), seconds)


def catalog_load(url: str, identity: Identity, processes: int, threads: int, seconds: float) -> dict[str, Any]:
    """Signed, verified catalog requests from `processes` × `threads` clients for `seconds`."""
    return _run_processes(_catalog_process, (url, identity, threads, seconds), processes, seconds)


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
