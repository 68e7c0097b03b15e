"""The MQTT connector family: broker settings, the topic grammar, and streams read from landed batches.

Devices push; nothing can be pulled from a broker later. So a long-running collector
(`connectors/collector.py`, `neuron collect`) lands every message durably as it arrives,
and a stream's `extract(since, until)` reads the landed batches of its window
(`connectors/collector_landing.py`), exactly as an HTTP stream reads a vendor's pages.

Topics: `{prefix}/{community}/{system}/{device}/{kind}`, where `system` names a device
family (two families share system 6, two share system 8, so the seed's number alone
cannot route a message) and `kind` is `telemetry`, `alarm` or `status`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from connectors import collector_landing as landing
from connectors.base import SourceState, records_to_raw_batch
from connectors.collector_progress import require_landed_through
from kernel.settings import Settings
from schemas.contract import Contract

REJECTS = "_rejects"  # landed messages that belong to no stream (unknown topic)


@dataclass(frozen=True)
class Family:
    """A device family on the broker: the seed's system number, its stream, the kinds it sends."""

    system: int
    stream: str
    kinds: frozenset[str]


FAMILIES: dict[str, Family] = {
    "nonmotor-gate": Family(2, "nonmotor_passes", frozenset({"telemetry"})),
    "fence": Family(3, "fence_events", frozenset({"status", "alarm"})),
    "home-safety": Family(6, "home_safety", frozenset({"telemetry", "alarm"})),
    "wristband": Family(6, "elderly_care", frozenset({"telemetry", "alarm"})),
    "environment": Family(7, "environment", frozenset({"telemetry"})),
    "streetlight": Family(8, "streetlights", frozenset({"telemetry", "alarm"})),
    "manhole": Family(8, "manhole_covers", frozenset({"status", "alarm"})),
}


def hub_keys(settings: Settings) -> landing.KeySource:
    """The hub's keys, which seal landed batches."""
    # Imported here: connectors otherwise stay clear of the privacy package.
    from privacy.keys import HubKeys

    return HubKeys.load(settings)


def landing_root(settings: Settings) -> Path:
    """Where the collector lands micro-batches: `<state>/landing/<stream>/<window>/`."""
    return settings.state_path / "landing"


def route(topic: str, prefix: str, community_id: str) -> tuple[str, str | None]:
    """(stream, problem) for a topic: problem is None when the topic belongs to a stream."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != prefix:
        return REJECTS, "topic is not prefix/community/system/device/kind"
    if parts[1] != community_id:
        return REJECTS, "topic names another community"
    family = FAMILIES.get(parts[2])
    if family is None:
        return REJECTS, "unknown device family"
    if parts[4] not in family.kinds:
        return REJECTS, f"kind not sent by the {parts[2]} family"
    if not parts[3]:
        return REJECTS, "empty device id"
    return family.stream, None


def identify(topic: bytes, payload: bytes) -> tuple[str, str | None]:
    """(msg_id, problem) of a payload; unreadable payloads get an id derived from their bytes."""
    problem: str | None
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        body, problem = None, "payload is not JSON"
    else:
        problem = None if isinstance(body, dict) else "payload is not a JSON object"
    if isinstance(body, dict):
        msg_id = body.get("msg_id")
        if isinstance(msg_id, (str, int)) and not isinstance(msg_id, bool) and str(msg_id):
            return str(msg_id), None
        problem = "payload has no msg_id"
    # Derived from topic and bytes, so a redelivered copy gets the same id and is deduplicated.
    return "unreadable-" + hashlib.sha256(topic + b"\0" + payload).hexdigest()[:32], problem


def landed_record(topic: str, payload: bytes, msg_id: str, received_at: datetime) -> dict[str, Any]:
    """One landed message as a source record: the payload's fields plus what the hub knows.

    The topic's community, device and kind and the collector's receive time override any
    field of the same name in the payload: the broker's ACLs bind a device to its topic,
    the payload is whatever the device's firmware wrote.
    """
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        body = None
    record: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    _, community_id, _, device_id, kind = topic.split("/")
    record.update(
        msg_id=msg_id, community_id=community_id, device_id=device_id, kind=kind, received_at=received_at.isoformat()
    )
    return record


class MqttStream:
    """A stream whose messages the collector has landed; subclasses name the stream."""

    chunk_rows = 20_000

    def __init__(self, settings: Settings, contract: Contract, state: SourceState | None = None):
        self.contract, self.name = contract, contract.name
        self.settings = settings
        self.root = landing_root(settings)
        self.mqtt = settings.mqtt

    def extract(self, since: datetime, until: datetime) -> Iterator[pa.RecordBatch]:
        """Yield the messages received in [since, until) as raw batches, by receive time.

        Duplicates (a device's resend, a redelivery after a crash) are kept: validation
        drops them by msg_id, the primary key, and counts them in the quality results.
        """
        if self.mqtt.require_watermark:
            require_landed_through(self.root, until, self.mqtt.watermark_wait_seconds, self.name)
        table = landing.read_window(hub_keys(self.settings), self.root, self.name, since, until)
        for offset in range(0, table.num_rows, self.chunk_rows):
            chunk = table.slice(offset, self.chunk_rows).to_pydict()
            rows = zip(chunk["topic"], chunk["payload"], chunk["msg_id"], chunk["received_at"], strict=True)
            yield records_to_raw_batch(self.contract, (landed_record(*row) for row in rows))
