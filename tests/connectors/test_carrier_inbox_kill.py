"""kill -9 of `neuron inbox` under 500 pushes/s: nothing the carriers were answered 200 for is lost.

The inbox runs as its own process; the simulated CTWing/OneNET platforms push at 500/s with their
retry rules; the inbox is SIGKILLed mid-stream and restarted. Every push acknowledged (HTTP 200)
must then be landed — and landed once, whatever the platforms re-sent while it was down.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kernel.settings import Settings
from simulator.carrier_push import CarrierDevice, CarrierPusher, PushConfig, PushStats, carrier_fleet, reports
from simulator.devices_broker import free_port
from tests.connectors.carrier_helpers import TOKEN, inbox_hub, landed
from tests.services import ServiceProcess

RATE, SECONDS = 500, 8  # two halves: the inbox is killed in the first


def InboxProcess(hub: Settings, port: int) -> ServiceProcess:
    """`neuron inbox` as a child process, killable with SIGKILL."""
    inbox = {"enabled": True, "port": port, "onenet_token": TOKEN, "process_interval_ms": 20,
             "land_interval_ms": 300}  # fmt: skip
    sections = {"inbox": json.dumps(inbox), "mqtt__port": str(free_port())}  # no broker: alarms wait in the outbox
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    process = ServiceProcess(hub, "neuron.cli", sections, ready=answers, args=("inbox",))
    process.url = url  # type: ignore[attr-defined]
    return process


@pytest.mark.slow
def test_kill_9_under_500_pushes_per_second_loses_nothing_acknowledged(tmp_path: Path) -> None:
    devices = carrier_fleet(7)
    hub = inbox_hub(tmp_path / "hub", devices)
    inbox = InboxProcess(hub, free_port())
    inbox.start()
    try:
        _kill_and_check(hub, devices, inbox)
    finally:
        if inbox.process is not None and inbox.process.poll() is None:
            inbox.process.kill()  # a failed assertion must not leave the inbox running


def _kill_and_check(hub: Settings, devices: list[CarrierDevice], inbox: ServiceProcess) -> None:
    items = list(reports(devices, int(time.time() * 1000), RATE * SECONDS, seed=21, alarm_rate=0.01))
    by_key = {r.key: r for r in items}
    cfg = PushConfig(ctwing_url=inbox.url + "/carrier/ctwing", onenet_url=inbox.url + "/carrier/onenet",
                     onenet_token=TOKEN, rate=RATE, workers=24, dup_rate=0.05, reorder_rate=0.05,
                     cooldown_seconds=0.5)  # fmt: skip
    peer = CarrierPusher(cfg)
    assert peer.verify_onenet()
    deliveries = peer.deliveries(items)
    half = len(deliveries) // 2
    pushed: list[PushStats] = []
    sender = threading.Thread(target=lambda: pushed.append(peer.push(deliveries[:half])))
    sender.start()
    time.sleep(half / RATE / 2)
    accepted_before = sum(1 for d in deliveries if d.result == "accepted")
    inbox.kill()  # mid-stream: pushes in the group commit, readings not yet landed, alarms not published
    inbox.start()  # while the platform retries, cools down, drops (its rules; what it drops was never 200)
    sender.join(timeout=120)
    after = CarrierPusher(cfg).push(deliveries[half:])  # the load goes on against the restarted inbox
    assert pushed and after.accepted > 100 and accepted_before > 100

    acknowledged = {d.key for d in deliveries if d.result == "accepted"}
    expected = {
        (by_key[k].device.hub_device_id, datetime.fromtimestamp(by_key[k].event_ms / 1000, UTC).isoformat())
        for k in acknowledged
        if by_key[k].online is None
    }

    def rows() -> list[tuple[object, object]]:
        found = landed(hub, "home_safety") + landed(hub, "manhole_covers")
        return [(r["device_id"], r["event_time"]) for r in found]

    deadline = time.monotonic() + 90
    while not expected <= set(rows()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert inbox.stop() == 0
    found = rows()
    assert expected <= set(found), f"{len(expected - set(found))} acknowledged reports not landed"
    assert Counter(found).most_common(1)[0][1] == 1  # and none twice
    assert not landed(hub, "_rejects")
    log = inbox.log.read_text()
    assert all(d.imei not in log and d.hub_device_id not in log for d in devices[:50])  # no identifiers in logs
