"""NGSI-LD push: published feed partitions → the peer broker (simulator/ngsi_broker.py), entities/s
sustained and batch (one upsert request) p95, against a bare HTTP client posting the very same
batches to the same kind of broker in the same run.

The broker runs in a process of its own (as the city brain's would be on another machine). The
hub side is the whole push: the consumer's published Parquet pages read and rendered as the pull
API does (api/records, api/format_ngsi), chunks of 1,000, the 207 bodies parsed, the history
written through the temporal API with its sent-instances ledger, and one audit entry per round.
Paths: upserts with history; upserts only; with the broker failing 10% of the entities (207).

    .venv/bin/python -m bench ngsi_push
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

from kernel.settings import REPO_ROOT

STATIONS, HOURS, DAYS = 250, 24, 2  # 12,000 station-hours → 24,000 entities (air + noise)
GOAL_RATE, GOAL_P95_S = 2000.0, 1.0
ALERTS, ALERT_RATE = 100, 20.0  # alarm states, per second
UPSERT = "/ngsi-ld/v1/entityOperations/upsert"


@contextmanager
def broker_process(*args: str) -> Iterator[str]:
    """The peer broker in its own process; its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator.ngsi_broker", "--port", "0", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        yield line.strip().rsplit(" ", 1)[-1]
    finally:
        proc.terminate()
        proc.wait(10)


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else (values[0] if values else 0.0)


def _hub_path(home: Path, url: str, history: bool) -> dict[str, Any]:
    """Publish the partitions, push them all; the rate, batch times, and the broker's counts."""
    from peers.ngsi_ld.consumer import ConsumerPush
    from peers.ngsi_ld.feeds import push_feeds
    from tests.peers.ngsi_rig import AIR, DAY, air_rows, publish, push_settings

    settings = push_settings(home, url, history=history, max_attempts=10, backoff_seconds=0.01)
    for d in range(DAYS):
        publish(settings, AIR, air_rows(STATIONS, HOURS, DAY + timedelta(days=d)), day=DAY + timedelta(days=d))
    consumer = ConsumerPush(settings, settings.push.ngsi_ld[0])
    batches: list[float] = []
    bodies: list[bytes] = []
    for client in consumer.pusher.clients:  # every connection the chunks go out on
        _instrument(client, batches, bodies)
    started = time.perf_counter()
    entities = push_feeds(consumer)
    seconds = time.perf_counter() - started
    stats = requests.get(f"{url}/__peer/stats", timeout=10).json()
    return {
        "entities": entities,
        "seconds": seconds,
        "rate": entities / seconds,
        "batches": len(batches),
        "batch_p50": statistics.median(batches),
        "batch_p95": _p95(batches),
        "broker": stats,
        "bodies": bodies,
    }


def _instrument(client: Any, batches: list[float], bodies: list[bytes]) -> None:
    """Time each batch (render, POST, parse the answer) and keep each request body, for the floor."""
    upsert, post = client.upsert, client.http.post

    def timed(entities: list[dict[str, Any]]) -> Any:
        started = time.perf_counter()
        try:
            return upsert(entities)
        finally:
            batches.append(time.perf_counter() - started)

    def kept(url: str, data: Any = None, **options: Any) -> requests.Response:
        if url.endswith(UPSERT) and isinstance(data, bytes):
            bodies.append(data)
        return post(url, data=data, **options)

    client.upsert = timed
    client.http.post = kept


def _floor(url: str, bodies: list[bytes]) -> dict[str, Any]:
    """The same request bodies posted one after another by a bare requests session."""
    session = requests.Session()
    headers = {"Content-Type": "application/ld+json"}
    times: list[float] = []
    entities = 0
    started = time.perf_counter()
    for body in bodies:
        t0 = time.perf_counter()
        answer = session.post(url + UPSERT, data=body, params={"options": "update"}, headers=headers, timeout=60)
        times.append(time.perf_counter() - t0)
        assert answer.status_code in (201, 204), answer.status_code
        entities += body.count(b'"id":"urn:ngsi-ld:')
    seconds = time.perf_counter() - started
    return {
        "entities": entities,
        "rate": entities / seconds,
        "batch_p50": statistics.median(times),
        "batch_p95": _p95(times),
    }


def _alerts(home: Path, url: str) -> dict[str, Any]:
    """Alarm states committed to the relay's outbox (as its group commit writes them) at 20/s while
    `neuron push` runs: commit → Alert entity at the broker, watched by polling the broker's query API."""
    import threading
    from datetime import UTC, datetime

    from peers.ngsi_ld.service import run_push
    from relay.alert_outbox import TOPIC
    from tests.peers.ngsi_rig import push_settings
    from warehouse.control import session_scope
    from warehouse.models import OutboxMessage

    settings = push_settings(home, url, feeds=[])
    outbox = settings.push.ngsi_ld[0].alert_outbox
    stop = threading.Event()
    pusher = threading.Thread(target=run_push, args=(settings, stop), daemon=True)
    pusher.start()
    committed: dict[str, float] = {}
    seen: dict[str, float] = {}
    watcher_stop = threading.Event()

    def watch() -> None:
        session = requests.Session()
        while not watcher_stop.is_set():
            try:
                found = session.get(f"{url}/ngsi-ld/v1/entities", params={"type": "Alert", "limit": "1000"}, timeout=10)
            except requests.RequestException:
                continue  # a loaded machine: poll again
            now = time.perf_counter()
            for entity in found.json():
                seen.setdefault(entity["id"], now)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(1.0)
    for n in range(ALERTS):
        alarm_id = f"ALMBENCH{n:06d}"
        raised = datetime.now(UTC).isoformat()
        state: dict[str, Any] = {"alarm_id": alarm_id, "community_id": "music-square", "family": "home-safety"}
        state |= {"category": "smoke", "severity": "critical", "state": "raised", "raised_at": raised}
        state |= {"escalated": False, "updates": 0, "building": "7"}
        with session_scope(settings.control_url) as db:
            db.add(
                OutboxMessage(
                    destination=outbox,
                    topic=TOPIC,
                    payload=json.dumps(state),
                    alarm_id=alarm_id,
                    created_at=datetime.now(UTC),
                )
            )
        committed[f"urn:ngsi-ld:Alert:music-square:{alarm_id}"] = time.perf_counter()
        time.sleep(1 / ALERT_RATE)
    deadline = time.perf_counter() + 10
    while len(seen) < ALERTS and time.perf_counter() < deadline:
        time.sleep(0.05)
    watcher_stop.set()
    watcher.join(15)
    stop.set()
    pusher.join(30)
    latencies = sorted(seen[k] - t for k, t in committed.items() if k in seen)
    return {
        "alerts": ALERTS,
        "arrived": len(latencies),
        "p50": statistics.median(latencies),
        "p95": _p95(latencies),
        "max": latencies[-1],
    }


def run() -> dict[str, Any]:
    result: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="ngsi-bench-") as tmp:
        with broker_process() as url:
            result["history"] = _hub_path(Path(tmp) / "history", url, history=True)
        with broker_process() as url:
            result["upserts"] = _hub_path(Path(tmp) / "upserts", url, history=False)
        with broker_process() as url:
            result["floor"] = _floor(url, result["upserts"]["bodies"])
        with broker_process("--fail-fraction", "0.1") as url:
            result["faults"] = _hub_path(Path(tmp) / "faults", url, history=True)
        with broker_process() as url:
            result["alerts"] = _alerts(Path(tmp) / "alerts", url)
    for path in ("history", "upserts", "faults"):
        result[path].pop("bodies")
    result["load_after"] = os.getloadavg()[0]
    return result


def report(result: dict[str, Any]) -> str:
    hist, ups, floor, faults = result["history"], result["upserts"], result["floor"], result["faults"]
    met = hist["rate"] >= GOAL_RATE and hist["batch_p95"] < GOAL_P95_S
    b, al = faults["broker"], result["alerts"]
    lines = [
        f"- workload: {STATIONS} stations × {HOURS} h × {DAYS} days of `env.air_quality_hourly` published for the "
        f"district → {hist['entities']:,} entities (AirQualityObserved + NoiseLevelObserved), chunks of 1,000, "
        f"`options=update`, application/ld+json; broker in its own process; load average "
        f"{result['load_before']:.1f} before, {result['load_after']:.1f} after (2 cores, shared)",
        f"- hub push, upserts and history (temporal API, ledger), audited: **{hist['rate']:,.0f} entities/s**, "
        f"{hist['batches']} batches, batch p50 {hist['batch_p50'] * 1000:.0f} ms, "
        f"**p95 {hist['batch_p95'] * 1000:.0f} ms**; {hist['broker']['temporal_instances']:,} temporal instances, "
        f"{hist['broker']['duplicate_instances']} duplicates",
        f"- hub push, upserts only: {ups['rate']:,.0f} entities/s, batch p50 {ups['batch_p50'] * 1000:.0f} ms, "
        f"p95 {ups['batch_p95'] * 1000:.0f} ms",
        f"- floor, the same {ups['batches']} request bodies posted by a "
        f"bare `requests` session: {floor['rate']:,.0f} entities/s, batch p50 {floor['batch_p50'] * 1000:.0f} ms, "
        f"p95 {floor['batch_p95'] * 1000:.0f} ms (hub upserts-only at {ups['rate'] / floor['rate']:.0%} of it)",
        f"- broker failing 10% of the entities (207): {faults['rate']:,.0f} entities/s, batch p95 "
        f"{faults['batch_p95'] * 1000:.0f} ms; {b['entity_errors']:,} entity failures, {faults['batches']} requests, "
        f"{b['entities']:,} entities stored, {b['duplicate_instances']} duplicate temporal instances",
        f"- alarms: {al['alerts']} alarm states committed to the relay's outbox at {ALERT_RATE:g}/s while "
        f"`neuron push` runs (alert poll 0.2 s): {al['arrived']} Alert entities at the broker, commit → broker "
        f"p50 {al['p50'] * 1000:.0f} ms, p95 {al['p95'] * 1000:.0f} ms, max {al['max'] * 1000:.0f} ms "
        "(goal: within 1 s)",
        f"- goal ≥ {GOAL_RATE:,.0f} entities/s sustained with batch p95 < {GOAL_P95_S:g} s: "
        f"**{'met' if met else 'not met'}**",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
