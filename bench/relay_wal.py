"""The relay's SQLite WAL under a sustained burst: its peak size with the relay's bound (issue 17,
D4: `sqlite_wal_limit_mb`, a TRUNCATE checkpoint past it) against the relay without one (PASSIVE
checkpoints only, what main did: 887 MB after 110 s at 300 alarms/s), in the same run.

The relay runs as its own process (`python -m relay.run`, fsync full, logging every state
change); devices are a paced socket (bench/mqtt_probe.py) at `RATE` alarms/s; the WAL file is
sampled every 0.2 s; the district subscriber stamps arrivals, so the bound's cost in latency
shows too. `NEURON_BENCH_WAL_SECONDS` sets the burst per path (default 40 s: the two paths
stay under the 90 s a bench may take on the shared machine); issue 17 asks for 10 minutes.

    .venv/bin/python -m bench relay_wal
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.mqtt_probe import StampingSubscriber
from bench.relay_latency import _alarms, _hub, _measure, _percentiles, _start_relay
from simulator.community import Community
from simulator.devices import DeviceFleet
from simulator.devices_broker import Broker

RATE = 300
SECONDS = int(os.environ.get("NEURON_BENCH_WAL_SECONDS", "40"))
LIMIT_MB = 64
# (path name, sqlite_wal_limit_mb): the default bound, and in effect none (as on main before).
PATHS = ((f"bounded ({LIMIT_MB} MB limit: rewound past it)", LIMIT_MB), ("unbounded (PASSIVE only)", 10**7))


class _Sampler:
    """Samples a file's size every `step` seconds in a thread; keeps the peak and the series."""

    def __init__(self, path: Path, step: float = 0.2) -> None:
        self.path, self.step = path, step
        self.peak = 0
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.step):
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            self.samples.append(size)
            self.peak = max(self.peak, size)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def run() -> dict[str, Any]:
    if not StampingSubscriber.available():
        raise RuntimeError("bench relay_wal needs mosquitto_sub (Debian package mosquitto-clients)")
    with tempfile.TemporaryDirectory(prefix="neuron-bench-relay-wal-") as tmp:
        root = Path(tmp)
        brokers = [Broker(root / n).start() for n in ("community", "district", "police")]
        community, district, police = brokers
        rows = []
        try:
            fleet = DeviceFleet(Community())
            offset = 0
            for name, limit_mb in PATHS:
                # A hub (control database) of its own per path: each starts from an empty WAL.
                hub = _hub(root / f"hub-{limit_mb}", community, district, police)
                hub.relay.sqlite_wal_limit_mb = limit_mb
                db = Path(hub.control_url.removeprefix("sqlite:///"))
                wal = Path(f"{db}-wal")
                process = _start_relay(hub, "full", root / "relay.log")
                sampler = _Sampler(wal)
                started = time.monotonic()
                try:
                    alarms = _alarms(fleet, RATE * SECONDS, offset)
                    sent, arrived = _measure(community.port, district.port, "citybrain/#", alarms, RATE, root)
                finally:
                    sampler.stop()
                    process.send_signal(signal.SIGTERM)
                    process.wait(60)
                offset += len(alarms)
                rows.append(
                    {
                        "path": name,
                        "seconds": time.monotonic() - started,
                        "peak_wal_mb": sampler.peak / 2**20,
                        "last_wal_mb": (sampler.samples[-1] if sampler.samples else 0) / 2**20,
                        "db_mb": db.stat().st_size / 2**20,
                        **_percentiles(sent, arrived),
                    }
                )
            return {"rows": rows, "rate": RATE, "burst_seconds": SECONDS, "load_average": os.getloadavg()}
        finally:
            for b in brokers:
                b.stop()


def report(result: dict[str, Any]) -> str:
    lines = [
        f"{result['rate']} alarms/s for {result['burst_seconds']} s per path (`NEURON_BENCH_WAL_SECONDS`), one relay",
        "process, fsync full, a fresh control database per path; WAL sampled every 0.2 s; latency is device",
        "publish → district receipt over the whole burst.",
        "",
        "| path | peak WAL MB | WAL MB at the end | database MB | p50 ms | p99 ms | max ms | received / sent |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['path']} | {r['peak_wal_mb']:.1f} | {r['last_wal_mb']:.1f} | {r['db_mb']:.1f} | "
            f"{r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.2f} | {r['received']} / {r['sent']} |"
        )
    load = result.get("load_average")
    if load:
        lines += ["", f"Load average at the end (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, 2 cores."]
    return "\n".join(lines)
