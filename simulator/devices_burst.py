"""Bursts of alarms on purpose: a kitchen fire sets off every smoke detector of a building.

The devices' own alarms come at realistic rates (simulator/devices_events.py); a burst is
what a demonstration or a load test asks for on top: within a minute every smoke detector
of the building raises a critical alarm (the smoke spreads up the stairwell: floor by
floor, a few seconds apart), each cleared 10 to 30 minutes later with the same alarm id.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from simulator.devices import DeviceFleet, Message
from simulator.devices_events import Hour


def kitchen_fire(fleet: DeviceFleet, building: int, at: datetime) -> list[Message]:
    """Every smoke detector of `building` raising an alarm from `at`, in sending order."""
    b = Hour(fleet, at.replace(minute=0, second=0, microsecond=0), f"burst:{building}:{at.isoformat()}")
    smoke = [d for d in fleet.detectors if d.info["detector"] == "smoke" and d.info["building"] == building]
    for d in smoke:
        when = at + timedelta(seconds=b.rng.randrange(60))
        reading = {"smoke_obscuration_pct": round(b.rng.uniform(12, 35), 2)}
        b.alarm(d, when, {**d.info, **reading, "alarm_type": "smoke", "severity": "critical"}, (600, 1800))
    return sorted(b.messages, key=lambda m: (m.publish_at, m.msg_id))
