"""kill -9 of the collector under load, against a real broker: nothing lost, nothing doubled.

The collector runs as its own process (`python -m connectors.collector_run`) while a
publisher sends numbered messages at QoS 1; the collector is SIGKILLed twice mid-stream
and restarted. Every message the broker accepted must then be landed, and after
de-duplication by msg_id (the pipeline's validation) be in staging exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

import pipeline
from connectors import collector_landing as landing
from connectors.collector_progress import landed_through
from connectors.mqtt import hub_keys, landing_root
from kernel.mqtt_settings import MqttSettings
from kernel.settings import Settings
from privacy.keys import init_keys
from simulator.devices import CST, Message
from simulator.devices_broker import Broker
from simulator.devices_publish import PublishStats, publish_messages
from tests.conftest import make_settings
from tests.services import ServiceProcess
from warehouse.migrations import migrate

TOTAL = 6000
TOPIC = "neuron/music-square/environment/ENV01/telemetry"


def readings(n: int) -> list[Message]:
    """n valid environment readings with numbered msg_ids."""
    start = datetime(2026, 11, 20, 8, tzinfo=CST)
    out = []
    for i in range(n):
        at = (start + timedelta(seconds=i)).isoformat()
        body = {"msg_id": f"kill-{i:06d}", "device_id": "ENV01", "event_time": at, "location": "north-gate"}
        out.append(Message(start, "environment", TOPIC, body["msg_id"], {**body, "pm25": 30.5, "pm10": 48.0}))
    return out


def CollectorProcess(hub: Settings, config: MqttSettings) -> ServiceProcess:
    """`neuron collect` as a child process of the test, killable with SIGKILL."""
    return ServiceProcess(hub, "connectors.collector_run", {"mqtt_json": config.model_dump_json()})


def landed_ids(hub: Settings) -> list[str]:
    root = landing_root(hub)
    since = datetime.now(UTC) - timedelta(hours=2)
    table = landing.read_window(hub_keys(hub), root, "environment", since, since + timedelta(hours=4))
    return [str(i) for i in table.column("msg_id").to_pylist()]


def wait_for(condition: object, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as b:
        if not b.keeps_sessions:
            pytest.skip(f"{b.kind} does not keep persistent sessions across disconnects")
        yield b


@pytest.mark.slow
def test_kill_9_under_load_then_restart_loses_nothing_and_doubles_nothing(tmp_path: Path, broker: Broker) -> None:
    hub = make_settings(tmp_path / "hub")
    init_keys(hub)
    migrate(hub.control_url)
    config = MqttSettings(port=broker.port, batch_max_messages=400, batch_max_ms=100, watermark_wait_seconds=30)
    collector = CollectorProcess(hub, config)
    collector.start()
    wait_for(lambda: landed_through(landing_root(hub)) is not None, timeout=30)  # connected, subscribed
    window_start = datetime.now(UTC)

    published: list[PublishStats] = []
    sender = threading.Thread(
        target=lambda: published.append(publish_messages(broker.host, broker.port, readings(TOTAL), rate=1500))
    )
    sender.start()
    for landed_before_kill in (1200, 3500):
        wait_for(lambda n=landed_before_kill: len(set(landed_ids(hub))) >= n)  # type: ignore[misc]
        collector.kill()  # mid-stream: batches in the buffer, maybe one landed but not acknowledged
        collector.start()
    sender.join(timeout=120)
    assert published and published[0].accepted == TOTAL
    wait_for(lambda: len(set(landed_ids(hub))) >= TOTAL)
    window_end = datetime.now(UTC)
    wait_for(lambda: (landed_through(landing_root(hub)) or window_start) >= window_end)
    assert collector.stop() == 0

    ids = landed_ids(hub)
    expected = {m.msg_id for m in published[0].sent}
    assert set(ids) == expected  # every accepted message landed, nothing else did
    summary = pipeline.run_window(hub, "environment", window_start, window_end)
    assert summary["rows_good"] == TOTAL and summary["rows_quarantined"] == 0
    assert summary["duplicates_dropped"] == len(ids) - TOTAL  # landed twice, if ever, is dropped here
    with duckdb.connect(str(hub.warehouse_file), read_only=True) as con:
        staged = [r[0] for r in con.execute("SELECT msg_id FROM stg_environment").fetchall()]
    assert sorted(staged) == sorted(expected)  # exactly once
    assert "kill-" not in collector.log.read_text()  # no message content in the collector's logs
