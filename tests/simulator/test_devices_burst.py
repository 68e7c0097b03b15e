"""A kitchen fire: every smoke detector of one building raises an alarm within a minute,
each cleared later under the same alarm id; no other building and no gas detector speaks."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from simulator.community import Community
from simulator.devices import CST, DeviceFleet
from simulator.devices_burst import kitchen_fire


def test_a_kitchen_fire_sets_off_every_smoke_detector_of_its_building() -> None:
    fleet = DeviceFleet(Community())
    at = datetime(2026, 12, 7, 18, 30, tzinfo=CST)
    messages = kitchen_fire(fleet, 3, at)
    payloads: list[dict[str, Any]] = [m.payload for m in messages if isinstance(m.payload, dict)]
    assert len(payloads) == len(messages)
    smoke = {d.device_id for d in fleet.detectors if d.info["detector"] == "smoke" and d.info["building"] == 3}
    assert smoke
    raised = [p for p in payloads if p["alarm_state"] == "raised"]
    assert {p["device_id"] for p in raised} == smoke and len(raised) == len(smoke)
    assert all(p["alarm_type"] == "smoke" and p["severity"] == "critical" for p in raised)
    raised_at = [m.publish_at for m, p in zip(messages, payloads, strict=True) if p["alarm_state"] == "raised"]
    assert all(at <= t and (t - at).total_seconds() < 60 for t in raised_at)
    states = Counter((p["alarm_id"], p["alarm_state"]) for p in payloads)
    assert all(states[(p["alarm_id"], "cleared")] == 1 for p in raised)
    assert [m.publish_at for m in messages] == sorted(m.publish_at for m in messages)
    assert kitchen_fire(fleet, 3, at) == messages  # deterministic
