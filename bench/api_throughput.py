"""The export API under load, over loopback, against a plain static-file server in the same run.

- Signed catalog requests: client processes sign each request (RFC 9421, fresh nonce) and
  verify each response's signature and digest with the hub client's own code (api.signing,
  api.verify) over keep-alive connections; the hub verifies, rate-limits, audits (group
  commit to SQLite, durable before the response leaves) and signs. Measured against the hub
  as `neuron serve` runs it (one uvicorn process) and with two uvicorn workers. The CPU
  both sides spent is reported: on two cores the clients' share is the hub's loss. Floor:
  the same catalog bytes as a static file, fetched without signing or verifying.
- Records streamed: one large partition paged as ndjson (verified pages of the maximum
  size), and streamed whole as Parquet (`partitions/{id}`, verified against its digest and
  manifest). Floor: the same ndjson and Parquet bytes as static files.
The hub (uvicorn, as `neuron serve` runs it) and the static server (Python's http.server)
each run in their own process; the server's peak RSS is sampled while it streams.

    .venv/bin/python -m bench.api_throughput
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from bench.api_load import catalog_body, catalog_load, download_static, fetch_static, stream_ndjson, stream_parquet
from bench.api_setup import prepare_hub

SECONDS = 10.0
CLIENT_PROCESSES = 2
THREADS_PER_PROCESS = 4
WORKER_COUNTS = (1, 2)  # uvicorn processes serving the hub
ROWS = 1_000_000
REPEATS = 5


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str) -> None:
    for _ in range(600):  # start-up only: never part of a measurement
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


class RssSampler:
    """Samples a process's resident memory in the background; `peak` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> RssSampler:
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU of a process and its children (uvicorn's workers)."""
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            total += sum(each.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return total


def _hub(home: Path, workers: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "bench.api_setup", str(home), str(port), str(workers)]
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    _wait_for(url + "/healthz")
    return process, url


def _catalog_run(hub: subprocess.Popen[bytes], url: str, setup: Any, seconds: float) -> dict[str, Any]:
    cpu = psutil.Process(hub.pid)
    before = [0.0]

    def start() -> None:  # the clients have warmed up: the hub's CPU from here on
        before[0] = _cpu_seconds(cpu)

    load = catalog_load(url, setup.identity, CLIENT_PROCESSES, THREADS_PER_PROCESS, seconds, start)
    requests_served = max(1, load["requests"])
    load["server_cpu_ms"] = (_cpu_seconds(cpu) - before[0]) / requests_served * 1000
    load["client_cpu_ms"] = load["client_cpu_seconds"] / requests_served * 1000
    return load


def run(seconds: float = SECONDS, rows: int = ROWS) -> dict[str, Any]:
    """Measure the hub and the floors; returns the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        setup = prepare_hub(home, rows)
        static_port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        result: dict[str, Any] = {"rows": rows, "seconds": seconds, "load_before": os.getloadavg()[0]}
        result["catalog_by_workers"] = {}
        for workers in WORKER_COUNTS[1:]:
            process, url = _hub(home, workers, env)
            try:
                result["catalog_by_workers"][workers] = _catalog_run(process, url, setup, seconds)
            finally:
                process.terminate()
                process.wait(timeout=30)
        hub_process, hub_url = _hub(home, WORKER_COUNTS[0], env)
        static_url = f"http://127.0.0.1:{static_port}"
        (Path(setup.static) / "catalog.json").write_bytes(catalog_body(hub_url, setup.identity))
        static_process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(static_port), "--bind", "127.0.0.1", "--directory", setup.static],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(static_url + "/catalog.json")
            result["catalog"] = _catalog_run(hub_process, hub_url, setup, seconds)
            result["catalog_by_workers"][WORKER_COUNTS[0]] = result["catalog"]
            clients = CLIENT_PROCESSES * THREADS_PER_PROCESS
            result["catalog_floor"] = fetch_static(static_url + "/catalog.json", CLIENT_PROCESSES, clients, seconds)
            result["ndjson"] = stream_ndjson(hub_url, setup.identity, setup.jwks, rows)
            result["ndjson_floor"] = download_static(static_url + "/records.ndjson", result["ndjson"]["rows"])
            # Medians of several: one download of a few tens of milliseconds is at the scheduler's mercy.
            target = home / "pulled.parquet"
            with RssSampler(hub_process.pid) as rss:
                hub_runs = [
                    stream_parquet(hub_url, setup.identity, setup.jwks, setup.partition_id, rows, target)
                    for _ in range(REPEATS)
                ]
            floor = static_url + "/partition.parquet"
            floor_runs = [download_static(floor, rows, home / "static.parquet") for _ in range(REPEATS)]
            result["parquet"], result["parquet_floor"] = _median(hub_runs), _median(floor_runs)
            result["server_rss_growth"] = rss.peak - rss.baseline
            result["parquet_bytes"] = setup.parquet_bytes
            result["load_after"] = os.getloadavg()[0]
        finally:
            for process in (hub_process, static_process):
                process.terminate()
                process.wait(timeout=30)
    return result


def _met(catalog: dict[str, Any]) -> bool:
    return bool(catalog["rps"] >= 500 and catalog["p99_ms"] < 50 and catalog["errors"] == 0)


def report(result: dict[str, Any]) -> str:
    """The RESULTS.md section."""
    floor = result["catalog_floor"]
    nd, nd_floor = result["ndjson"], result["ndjson_floor"]
    pq, pq_floor = result["parquet"], result["parquet_floor"]
    mib = 1024 * 1024
    lines = [
        f"- clients: {CLIENT_PROCESSES} processes × {THREADS_PER_PROCESS} threads, each thread one keep-alive "
        "connection (the standard library's HTTP client), every request signed and every response verified by the "
        f"hub client's own code (api.signing, api.verify); {result['seconds']:.0f} s per load test; hub and static "
        f"server in processes of their own; load average {result['load_before']:.1f} before, "
        f"{result['load_after']:.1f} after (2 cores, shared with the team's other work)",
    ]
    by_workers = {int(k): v for k, v in result["catalog_by_workers"].items()}
    for workers, catalog in sorted(by_workers.items()):
        how = "one uvicorn process, as `neuron serve` runs it" if workers == 1 else f"{workers} uvicorn workers"
        lines.append(
            f"- signed catalog requests, hub in {how} (it verifies, rate-limits, audits with a durable group commit, "
            f"signs): **{catalog['rps']:,.0f} requests/s, p50 {catalog['p50_ms']:.1f} ms, "
            f"p99 {catalog['p99_ms']:.1f} ms** ({catalog['errors']} errors); CPU per request: hub "
            f"{catalog['server_cpu_ms']:.2f} ms, clients {catalog['client_cpu_ms']:.2f} ms"
        )
    lines += [
        f"- floor, the same catalog bytes as a static file: {floor['rps']:,.0f} requests/s, "
        f"p50 {floor['p50_ms']:.1f} ms, p99 {floor['p99_ms']:.1f} ms",
        f"- ndjson, {nd['rows']:,} rows in verified pages of {nd['page']:,}: "
        f"**{nd['rows_per_s']:,.0f} rows/s**; floor (one static ndjson file): {nd_floor['rows_per_s']:,.0f} rows/s "
        f"(ratio {nd_floor['rows_per_s'] / nd['rows_per_s']:.1f}×)",
        f"- Parquet, {result['rows']:,} rows, one {result['parquet_bytes'] / mib:.1f} MiB partition, streamed to disk "
        f"and verified (digest, manifest): **{pq['rows_per_s']:,.0f} rows/s**; floor (static file to disk): "
        f"{pq_floor['rows_per_s']:,.0f} rows/s (medians of {REPEATS}; "
        f"**ratio {pq_floor['rows_per_s'] / pq['rows_per_s']:.2f}×**, goal ≤ 2×)",
        f"- hub memory while streaming it: resident set grew by {result['server_rss_growth'] / mib:.1f} MiB "
        f"for a {result['parquet_bytes'] / mib:.1f} MiB file (chunks of 1 MiB)",
    ]
    verdicts = ", ".join(
        f"{'one process' if w == 1 else f'{w} workers'} **{'met' if _met(c) else 'not met'}**"
        for w, c in sorted(by_workers.items())
    )
    stream_ok = pq_floor["rows_per_s"] / pq["rows_per_s"] <= 2
    lines.append(
        f"- goals on this machine: ≥ 500 signed requests/s with p99 < 50 ms: {verdicts}; "
        f"Parquet within 2× of the floor: **{'met' if stream_ok else 'not met'}**"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    print(json.dumps(run(), indent=1, default=str))
