"""The relay's CPU per alarm without MQTT: its worker and group commit, in this process.

`relay_latency` shows that one relay process saturates a little above 1,000 alarms/s on this
machine; this bench says where the CPU goes, repeatably. It feeds device alarms (the
simulator's fleet, each device raising and clearing in turn) straight into the relay's
worker in groups of 1, 3 and 20, and writes each group commit inline (no committer thread,
no publishing: those are paho's and the broker's share, measured by `relay_latency`). The
baseline, in the same run, is what every alarm needs at the least: its two Ed25519
signatures and the canonical JSON they sign. Seals are warm (every device seen once
before), as in a relay that has run for a while.

    .venv/bin/python -m bench relay_cpu
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.relay_latency import _alarms, _hub
from relay.messages import Signer
from relay.service import Inbound, Relay
from simulator.community import Community
from simulator.devices import DeviceFleet

GROUPS = (1, 3, 20)
ALARMS = 3000
SYNCHRONOUS = ("full", "normal")


class _Port:
    """Where the relay would connect (it never does here)."""

    def __init__(self, port: int) -> None:
        self.port = port


def _feed(relay: Relay, alarms: list[tuple[str, bytes, str]], group: int) -> float:
    """CPU seconds to process and commit `alarms` in groups of `group`."""
    now = time.time()
    items = [Inbound(None, topic, body, now, relay.community, i, 0, 0) for i, (topic, body, _) in enumerate(alarms)]
    started = time.process_time()
    for k in range(0, len(items), group):
        relay._process(items[k : k + group])
        job = relay._commits.get()
        assert job is not None
        relay.store.write(job[0])
    spent = time.process_time() - started
    relay.store.checkpoint()  # as the relay's checkpointer thread does, off the measured path
    return spent


def _floor(relay: Relay, count: int) -> float:
    """CPU seconds for `count` alarms' two signatures over canonical JSON of a relay message's size."""
    signer = Signer(relay.keys.active_signing_key)
    payload: dict[str, Any] = {
        "alarm_id": "ALM" + "0" * 21,
        "event_id": "ALM" + "0" * 21 + "-0001",
        "state": "raised",
        "severity": "critical",
        "category": "smoke",
        "location": {"community_id": "music-square", "building": "3", "unit": "2"},
        "policy": "sha256:" + "0" * 64,
        "relay_rules": "sha256:" + "1" * 64,
        "detected_at": "2026-11-20T09:00:00+08:00",
        "event_time": "2026-11-20T09:00:00+08:00",
    }
    started = time.process_time()
    for n in range(count):
        payload["seq"] = n
        signer.sign(payload)
        signer.sign(payload)
    return time.process_time() - started


def run() -> dict[str, Any]:
    rows = []
    fleet = DeviceFleet(Community())
    floor_us = 0.0
    for synchronous in SYNCHRONOUS:
        with tempfile.TemporaryDirectory(prefix="neuron-bench-relay-cpu-") as tmp:
            hub = _hub(Path(tmp) / "hub", _Port(1), _Port(2), _Port(3))  # type: ignore[arg-type]
            relay = Relay(hub, hub.relay.model_copy(update={"sqlite_synchronous": synchronous}))
            warm = 2 * len([*fleet.detectors, *fleet.wristbands, *fleet.fence, *fleet.covers])
            _feed(relay, _alarms(fleet, warm, 0), 50)  # every device seen: seals cached
            offset = warm
            if not floor_us:
                floor_us = _floor(relay, ALARMS) / ALARMS * 1e6
            for group in GROUPS:
                seconds = _feed(relay, _alarms(fleet, ALARMS, offset, first=offset), group)
                offset += ALARMS
                rows.append({"synchronous": synchronous, "group": group, "us_per_alarm": seconds / ALARMS * 1e6})
    return {"rows": rows, "floor_us": floor_us}


def report(result: dict[str, Any]) -> str:
    floor = result["floor_us"]
    lines = [
        f"{ALARMS} device alarms per cell, fed to the relay's worker in groups; each group commit written",
        "inline (SQLite, the committer's own connection). CPU of this process (`time.process_time`), so",
        "a commit's fsync counts only for its kernel time. The lifecycle log line is not emitted here.",
        f"Baseline: two Ed25519 signatures over canonical JSON per alarm, {floor:.0f} µs.",
        "",
        "| outbox fsync | alarms per group commit | CPU µs per alarm | × the signatures |",
        "|---|---:|---:|---:|",
    ]
    for r in result["rows"]:
        us = r["us_per_alarm"]
        lines.append(f"| {r['synchronous']} | {r['group']} | {us:.0f} | {us / floor:.1f} |")
    by = {(r["synchronous"], r["group"]): r["us_per_alarm"] for r in result["rows"]}
    lines.append("")
    for synchronous in SYNCHRONOUS:
        small, large = by[(synchronous, GROUPS[0])], by[(synchronous, GROUPS[-1])]
        per_group = (small - large) / (1 - 1 / GROUPS[-1])  # cost(g) = per_alarm + per_group / g
        per_alarm = large - per_group / GROUPS[-1]
        share = (per_group / 2.5) / (per_alarm + per_group / 2.5)
        lines.append(
            f"- fsync {synchronous}: about {per_group:.0f} µs per group commit and {per_alarm:.0f} µs per alarm; in "
            f"groups of 2.5 (1,000 alarms/s, the 2 ms window) the per-group part is {share:.0%} of the worker's CPU."
        )
    return "\n".join(lines)
