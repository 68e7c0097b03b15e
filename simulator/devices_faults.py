"""The defects real device fleets have, injected deterministically into an hour's messages.

Per message, at most one of: a truncated (non-JSON) payload, a garbage value, a reading
outside the physically possible range, a resend of the same message (same msg_id), a
message that arrives hours late, or a few minutes out of order. Per stream, optionally,
schema drift on a share of its devices (a firmware update): an added field, a renamed
field, or a field whose type changed. Connection drops are the publisher's
(`disconnect_every`, simulator/devices_publish.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from random import Random
from typing import Any

from simulator.devices import DeviceFleet, Message

FAULT_KINDS = ("malformed_payload", "malformed_value", "out_of_range", "duplicate", "late", "out_of_order")
DRIFT_KINDS = ("added", "renamed", "retyped")
LATE_HOURS = (1, 6)

# Per stream: the reading a fault or a drift touches, an impossible value of it, its new name.
READING: dict[str, tuple[str, Any, str]] = {
    "nonmotor_passes": ("direction", "sideways", "dir"),
    "fence_events": ("voltage_kv", 65.5, "voltage"),
    "home_safety": ("battery_pct", 255, "battery"),
    "elderly_care": ("heart_rate_bpm", 255, "hr"),
    "environment": ("pm25", 9999.0, "pm2_5"),
    "streetlights": ("power_w", 4000.0, "power"),
    "manhole_covers": ("tilt_deg", 180.0, "tilt"),
}


@dataclass(frozen=True)
class DeviceFaults:
    """Rates of each defect (per message), the streams drifting, and connection drops."""

    malformed_payload_rate: float = 0.001
    malformed_value_rate: float = 0.002
    out_of_range_rate: float = 0.002
    duplicate_rate: float = 0.005
    late_rate: float = 0.003
    out_of_order_rate: float = 0.01
    drift: dict[str, str] = field(default_factory=dict)  # stream -> "added" | "renamed" | "retyped"
    drift_share: float = 0.25  # of the stream's devices
    disconnect_every: int = 0  # the publisher's connection drops every N messages (0: never)

    @classmethod
    def none(cls) -> DeviceFaults:
        """A perfectly behaved fleet."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    @classmethod
    def only_drift(cls, drift: dict[str, str], share: float = 0.25) -> DeviceFaults:
        """A fleet whose only defect is schema drift (stream -> "added" | "renamed" | "retyped")."""
        return replace(cls.none(), drift=drift, drift_share=share)

    def rates(self) -> tuple[float, ...]:
        return (
            self.malformed_payload_rate,
            self.malformed_value_rate,
            self.out_of_range_rate,
            self.duplicate_rate,
            self.late_rate,
            self.out_of_order_rate,
        )


def drifted_devices(fleet: DeviceFleet, stream: str, share: float) -> set[str]:
    """The devices of a stream running the drifting firmware: a fixed share (at least one), by seed."""
    ids = sorted(d.device_id for d in fleet.devices() if d.stream == stream)
    ranked = sorted(
        ids, key=lambda i: hashlib.sha256(f"{fleet.community.seed}:{fleet.community_id}:{i}:fw".encode()).digest()
    )
    return set(ranked[: max(1, round(share * len(ranked)))]) if ids and share > 0 else set()


def _drift(payload: dict[str, Any], stream: str, kind: str) -> dict[str, Any]:
    name, _, renamed = READING[stream]
    if kind == "added":
        return {**payload, "fw_version": "2.4.1"}
    if kind == "renamed":
        return {(renamed if k == name else k): v for k, v in payload.items()}
    return {**payload, name: {"value": payload.get(name), "v": 2}}  # retyped: a number became an object


def apply_faults(fleet: DeviceFleet, hour: datetime, messages: list[Message], faults: DeviceFaults) -> list[Message]:
    """The hour's messages as the devices really send them (resends included)."""
    rng = Random(f"{fleet.community.seed}:{fleet.community_id}:{hour.isoformat()}:faults")
    drifting = {s: drifted_devices(fleet, s, faults.drift_share) for s in faults.drift}
    out: list[Message] = []
    for m in messages:
        assert isinstance(m.payload, dict)
        drift = faults.drift.get(m.stream)
        if drift and m.payload["device_id"] in drifting[m.stream]:
            m = replace(m, payload=_drift(m.payload, m.stream, drift), drift=drift)
        u, kind, bound = rng.random(), None, 0.0
        for name, rate in zip(FAULT_KINDS, faults.rates(), strict=True):
            bound += rate
            if u < bound:
                kind = name
                break
        if kind is None:
            out.append(m)
            continue
        out += _inject(rng, replace(m, fault=kind), kind)
    return out


def _inject(rng: Random, m: Message, kind: str) -> list[Message]:
    assert isinstance(m.payload, dict)
    name, impossible, _ = READING[m.stream]
    if kind == "malformed_payload":
        body = m.body()
        return [replace(m, payload=body[: max(1, len(body) // 2)])]  # cut off mid-transmission
    if kind == "malformed_value":
        return [replace(m, payload={**m.payload, name: "N/A" if name in m.payload else "ERR"})]
    if kind == "out_of_range":
        return [replace(m, payload={**m.payload, name: impossible})]
    if kind == "duplicate":
        return [m, replace(m, publish_at=m.publish_at + timedelta(seconds=rng.randint(0, 5)))]
    if kind == "late":
        return [replace(m, publish_at=m.publish_at + timedelta(hours=rng.uniform(*LATE_HOURS)))]
    return [replace(m, publish_at=m.publish_at + timedelta(seconds=rng.randint(5, 300)))]  # out of order
