"""Shared pieces of the carrier inbox tests: a private hub with an inbox, the simulated fleet
registered, and the rows the inbox landed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors import collector_landing as landing
from connectors.carrier.devices import DeviceRegister
from connectors.carrier.service import InboxService
from connectors.mqtt import hub_keys, landing_root
from kernel.inbox_settings import InboxSettings
from kernel.settings import Settings
from privacy.keys import HubKeys, init_keys
from simulator.carrier_push import CarrierDevice, carrier_fleet, registry_csv
from tests.conftest import make_settings

TOKEN = "music-square-onenet-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, like an EncodingAESKey


def small_fleet() -> list[CarrierDevice]:
    """Three smoke detectors, three gas detectors and three covers of Music Square."""
    fleet = carrier_fleet(7)
    pick = {"smoke": 3, "gas": 3, "manhole": 3}
    chosen = []
    for d in fleet:
        if pick[d.kind]:
            pick[d.kind] -= 1
            chosen.append(d)
    return chosen


def inbox_hub(home: Path, devices: list[CarrierDevice], **inbox: Any) -> Settings:
    """An initialised hub whose inbox knows `devices`."""
    config = InboxSettings(
        enabled=True, port=0, onenet_token=TOKEN, process_interval_ms=10, land_interval_ms=100, **inbox
    )  # type: ignore[arg-type]
    hub = make_settings(home, inbox=config)
    init_keys(hub)
    DeviceRegister.from_csv(registry_csv(devices)).save(HubKeys.load(hub), hub.state_path / config.devices_file)
    return hub


@contextmanager
def running_inbox(hub: Settings) -> Iterator[InboxService]:
    """The inbox's HTTP side on a free loopback port; the test drives the processor itself."""
    service = InboxService(hub, publish_alarms=False, process=False, port=0).start()
    try:
        yield service
    finally:
        service.stop()


def landed(hub: Settings, stream: str) -> list[dict[str, Any]]:
    """Every landed row of `stream` in the last and next hours: topic, payload fields, problem."""
    since = datetime.now(UTC) - timedelta(hours=2)
    table = landing.read_window(hub_keys(hub), landing_root(hub), stream, since, since + timedelta(hours=4))
    out = []
    for row in table.to_pylist():
        body = json.loads(row["payload"]) if row["problem"] is None else {}
        out.append({"topic": row["topic"], "problem": row["problem"], **body})
    return out
