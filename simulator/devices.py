"""Music Square's MQTT devices: who has which device, and the messages they send in a time range.

Deterministic from the community's seed: the same community gives the same devices, and
each hour's messages come from a random stream seeded by (seed, community, hour, family),
so any time range is the union of its hours whatever the range's bounds. In-home
detectors exist only in households that opted in (`consent_smoke_gas`), wristbands only
for the elderly of households that opted in (`consent_elderly_care`).

`ground_truth()` lists every identifier a device can put in a message, for leak scans.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from random import Random
from typing import Any

from simulator.community import Community

CST = timezone(timedelta(hours=8), "Asia/Shanghai")
TOPIC = "neuron/{community}/{family}/{device}/{kind}"
ENV_LOCATIONS = ("north-gate", "south-gate", "central-garden", "playground", "east-path", "west-path")
SEGMENTS = ("north", "east", "south", "west")
COVER_TYPES = ("sewage", "rainwater", "rainwater", "power", "telecom", "gas")
VEHICLES = ("ebike", "ebike", "ebike", "bicycle", "bicycle", "tricycle", "scooter")


@dataclass(frozen=True)
class Device:
    """One device: its id, its family (the topic's system segment), and what it always reports."""

    device_id: str
    family: str
    stream: str
    info: dict[str, Any] = field(default_factory=dict, hash=False)

    def topic(self, community_id: str, kind: str) -> str:
        return TOPIC.format(community=community_id, family=self.family, device=self.device_id, kind=kind)


@dataclass
class Message:
    """A message a device sends: when (the order of publishing), its topic, its payload."""

    publish_at: datetime
    stream: str
    topic: str
    msg_id: str
    payload: dict[str, Any] | bytes  # bytes only for a malformed payload
    fault: str | None = None  # the injected fault, if any (simulator.devices_faults)
    drift: str | None = None  # schema drift of the device's firmware, if any

    def body(self) -> bytes:
        """The payload as the device puts it on the wire."""
        if isinstance(self.payload, bytes):
            return self.payload
        return json.dumps(self.payload, ensure_ascii=False, separators=(",", ":")).encode()


def _hex_id(seed: int, *parts: object, length: int = 6) -> str:
    text = ":".join(str(p) for p in (seed, *parts))
    return hashlib.sha256(text.encode()).hexdigest()[:length].upper()


class DeviceFleet:
    """Every device of a community, built once from the community's seed."""

    def __init__(self, community: Community) -> None:
        self.community = community
        self.community_id = community.community_id
        seed, n = community.seed, community.households_count
        rng = Random(f"{seed}:{self.community_id}:devices")
        self.gates = [Device(f"NMG{i:02d}", "nonmotor-gate", "nonmotor_passes") for i in range(1, 5)]
        # RFID tags of the households' e-bikes and bicycles: 0–3 per household, 1.1 on average.
        self.tags: list[tuple[str, str]] = []
        for h in community.households:
            for k in range(rng.choices((0, 1, 2, 3), (0.25, 0.45, 0.25, 0.05))[0]):
                self.tags.append((_hex_id(seed, self.community_id, h.household_id, "tag", k, length=8), h.household_id))
        self.fence = [
            Device(f"FZ{i:02d}", "fence", "fence_events", {"segment": SEGMENTS[(i - 1) % 4]}) for i in range(1, 13)
        ]
        self.detectors: list[Device] = []
        self.wristbands: list[Device] = []
        for h in community.households:
            home = {"household_id": h.household_id, "building": h.building, "unit": h.unit}
            if h.consent_smoke_gas:
                kinds = ["smoke", "gas"] if rng.random() < 0.85 else ["smoke"]
                for kind in kinds:
                    prefix = "SD" if kind == "smoke" else "GD"
                    device_id = prefix + _hex_id(seed, self.community_id, h.household_id, kind)
                    self.detectors.append(Device(device_id, "home-safety", "home_safety", {**home, "detector": kind}))
            if h.consent_elderly_care:
                for r in h.elderly:
                    device_id = "WB" + _hex_id(seed, self.community_id, r.resident_id, "band")
                    info = {**home, "resident_id": r.resident_id, "resting_hr": rng.randint(58, 82)}
                    self.wristbands.append(Device(device_id, "wristband", "elderly_care", info))
        self.stations = [
            Device(f"ENV{i:02d}", "environment", "environment", {"location": loc})
            for i, loc in enumerate(ENV_LOCATIONS, start=1)
        ]
        self.lamps = [
            Device(f"SL{i:03d}", "streetlight", "streetlights", {"rated_w": rng.choice((40, 60, 60, 80))})
            for i in range(1, max(8, n // 11) + 1)
        ]
        self.covers = [
            Device(f"MH{i:02d}", "manhole", "manhole_covers", {"cover_type": rng.choice(COVER_TYPES)})
            for i in range(1, max(4, n // 25) + 1)
        ]

    def devices(self) -> Iterator[Device]:
        """Every device, family by family."""
        yield from self.gates
        yield from self.fence
        yield from self.detectors
        yield from self.wristbands
        yield from self.stations
        yield from self.lamps
        yield from self.covers

    def ground_truth(self) -> dict[str, list[str]]:
        """Every identifier the devices can send, by kind (household- and person-bound ones)."""
        return {
            "nonmotor_tags": sorted(t for t, _ in self.tags),
            "household_ids": sorted({d.info["household_id"] for d in [*self.detectors, *self.wristbands]}),
            "resident_ids": sorted(d.info["resident_id"] for d in self.wristbands),
            "home_devices": sorted(d.device_id for d in self.detectors),
            "wristbands": sorted(d.device_id for d in self.wristbands),
        }


def hours(start: datetime, end: datetime) -> Iterator[datetime]:
    """The whole hours (Shanghai time) that overlap [start, end)."""
    hour = start.astimezone(CST).replace(minute=0, second=0, microsecond=0)
    while hour < end:
        yield hour
        hour += timedelta(hours=1)
