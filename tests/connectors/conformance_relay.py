"""Conformance harness for the relay's `alarm_lifecycle` stream (control database, SQL family).

The relay's lifecycle logic records two local days of simulated device alarms (raises,
clears, flapping) in the control database, with the relay's clock inside each day; each
day also gets two events written wrong (a state and a severity outside the contract), so
each window has quarantined rows. The raw in-home device ids the alarms carried must never
reach staging (the relay stores tokens).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pipeline
from privacy.keys import HubKeys
from relay.alarms import DeviceTokens, parse_alarm, relay_id_key
from relay.lifecycle import Lifecycles
from relay.store import Commit, RelayStore
from simulator.community import Community
from simulator.devices import DeviceFleet
from tests.connectors.hub_sources import hub_settings
from tests.relay.rig import START, alarm

DAYS = (date(2026, 11, 20), date(2026, 11, 21))


@contextmanager
def alarm_lifecycle(tmp: Path) -> Iterator[Any]:
    """The relay's lifecycle table, filled by its own lifecycle logic for two days."""
    from tests.connectors.conformance import SourceRun

    settings = hub_settings(tmp)
    keys = HubKeys.load(settings)
    fleet = DeviceFleet(Community(seed=3, households_count=150))

    lifecycles = Lifecycles(lambda _: 600.0, timedelta(minutes=5), DeviceTokens(keys).of, relay_id_key(keys))
    store = RelayStore(settings.control_url)
    windows = [pipeline.local_day_window(settings, d) for d in DAYS]
    devices = [*fleet.detectors[:6], *fleet.wristbands[:4], *fleet.fence[:3], *fleet.covers[:2]]
    for w, (start, _) in enumerate(windows):
        commit = Commit()
        for i, device in enumerate(devices):
            for n, state in enumerate(("raised", "cleared", "raised", "cleared")):  # flaps: one alarm, updated
                at = START + timedelta(days=w, minutes=i, seconds=30 * n)
                m = alarm(fleet, device, 10 * w + n // 2, state, at)
                parsed = parse_alarm(m.topic, m.body(), fleet.community_id, 4096, relay_id_key(keys))
                assert parsed is not None
                event = lifecycles.on_device(parsed, start + timedelta(hours=2 + i, seconds=n))
                if event is not None:
                    commit.events.append(event.row())
                    commit.alarm(event.alarm, is_new=event.state == "raised")
        for k, (field, value) in enumerate((("state", "forgotten"), ("severity", "urgent"))):
            bad = dict(commit.events[k], event_id=f"{commit.events[k]['event_id']}-bad", **{field: value})
            commit.events.append(bad)
        store.write(commit)
    identifiers = {d.device_id for d in devices if d.family in ("home-safety", "wristband")}
    identifiers |= {str(d.info["household_id"]) for d in devices if "household_id" in d.info}
    yield SourceRun(settings, windows, identifiers)


RELAY_HARNESSES: dict[str, Any] = {"alarm_lifecycle": alarm_lifecycle}
