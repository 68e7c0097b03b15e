"""Conformance harnesses for the MQTT streams (systems 2, 3, 6, 7, 8).

Once per test session, the simulated devices publish two consecutive stretches to a
private mosquitto while the collector lands them: each stretch is one receive-time window.
Every window of every stream also gets one message with an impossible reading, so each
has a quarantined row. Each harness then copies that hub (keys and landed batches) into
its own folder, so the suite's tests stay independent without publishing again.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from connectors.collector_progress import landed_through
from connectors.collector_run import BackgroundCollector
from connectors.mqtt import FAMILIES, landing_root
from kernel.mqtt_settings import MqttSettings
from privacy.keys import init_keys
from simulator.community import Community
from simulator.devices import CST, DeviceFleet, Message
from simulator.devices_broker import Broker
from simulator.devices_faults import READING, DeviceFaults
from simulator.devices_publish import messages_between, publish_messages
from tests.conftest import make_settings
from warehouse.migrations import migrate

SIM_START = datetime(2026, 11, 20, 7, tzinfo=CST)
STRETCH = timedelta(hours=2)


def _with_impossible_readings(messages: list[Message]) -> list[Message]:
    """One copy per stream of a message, under a new msg_id, with its reading out of range."""
    extra, seen = [], set()
    for m in messages:
        if m.stream in seen or not isinstance(m.payload, dict) or m.fault:
            continue
        seen.add(m.stream)
        name, impossible, _ = READING[m.stream]
        msg_id = "f" + m.msg_id[1:]
        extra.append(replace(m, msg_id=msg_id, payload={**m.payload, "msg_id": msg_id, name: impossible}))
    return messages + extra


@cache
def _landed_hub() -> tuple[Path, tuple[tuple[datetime, datetime], ...], frozenset[str]]:
    """A hub whose collector has landed two windows of every MQTT stream; built once."""
    folder = Path(tempfile.mkdtemp(prefix="neuron-mqtt-conformance-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    home = folder / "hub"
    settings = make_settings(home)
    init_keys(settings)
    fleet = DeviceFleet(Community(seed=3, households_count=150))
    windows = []
    root = landing_root(settings)
    with Broker(home.parent / "broker") as broker:
        config = MqttSettings(port=broker.port, protocol=broker.protocol, batch_max_ms=100)  # type: ignore[arg-type]
        with BackgroundCollector(settings, config) as collector:
            start = datetime.now(UTC)
            for n in range(2):
                first = SIM_START + n * STRETCH
                messages = _with_impossible_readings(messages_between(fleet, first, first + STRETCH, DeviceFaults()))
                sent = collector.stats.received + len(messages)
                publish_messages(broker.host, broker.port, messages, protocol=broker.protocol)
                assert collector.wait_until(lambda s, n=sent: s.received >= n)  # type: ignore[misc]
                end = datetime.now(UTC)
                assert collector.wait_until(lambda s, e=end: (landed_through(root) or e) > e)  # type: ignore[misc]
                windows.append((start, end))
                start = end
    identifiers = frozenset(i for ids in fleet.ground_truth().values() for i in ids)
    return home, tuple(windows), identifiers


def _mqtt(stream: str) -> Any:
    @contextmanager
    def harness(tmp: Path) -> Iterator[Any]:
        from tests.connectors.conformance import SourceRun

        template, windows, identifiers = _landed_hub()
        shutil.copytree(template, tmp / "hub")
        settings = make_settings(tmp / "hub")
        migrate(settings.control_url)
        yield SourceRun(settings, list(windows), set(identifiers))

    harness.__doc__ = f"{stream} over MQTT: simulated devices → private mosquitto → collector → landing."
    return harness


MQTT_HARNESSES: dict[str, Any] = {family.stream: _mqtt(family.stream) for family in FAMILIES.values()}
