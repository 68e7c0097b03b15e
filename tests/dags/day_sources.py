"""Every source of a hub's simulated day, set up before `neuron up` runs it (tests/dags/test_scheduler.py).

The parking vendor (passes and charges) is served over HTTP by the caller; this module prepares
the rest for the day's one daily window: the WeChat platform's database (a SQLite file, the
platform going live that day), the door-access vendor's export in its drop folder, the MQTT
device streams landed by the real collector from a private mosquitto (its clock set back to
the day, since the collector stamps what it lands with receive time), and the relay's alarm
lifecycle rows in the control database. Everything reaches Airflow's tasks as NEURON_*
environment variables.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

import connectors.collector as collector_module
import pipeline
from connectors.collector_progress import landed_through
from connectors.collector_run import BackgroundCollector
from connectors.mqtt import FAMILIES, landing_root
from kernel.mqtt_settings import MqttSettings
from kernel.settings import Settings
from privacy.keys import HubKeys
from relay.alarms import DeviceTokens, parse_alarm, relay_id_key
from relay.lifecycle import Lifecycles
from relay.store import Commit, RelayStore
from simulator.community import Community
from simulator.devices import CST, DeviceFleet
from simulator.devices_broker import Broker
from simulator.devices_faults import DeviceFaults
from simulator.devices_publish import messages_between, publish_messages
from simulator.parking import ParkingSimulator
from simulator.parking_charges import charges_updated_between
from simulator.platform import PlatformSimulator
from simulator.vendors import DoorAccessVendor
from tests.relay.rig import alarm

PLATFORM_STREAMS = [
    "platform_households",
    "platform_consent",
    "platform_votes",
    "platform_fee_payments",
    "platform_repairs",
    "platform_volunteers",
]
MQTT_STREAMS = sorted(family.stream for family in FAMILIES.values())
# Every stream some feed of schemas/feeds/ is built from.
ALL_STREAMS = [
    "vehicle_passes",
    "parking_charges",
    "door_access",
    "alarm_lifecycle",
    *PLATFORM_STREAMS,
    *MQTT_STREAMS,
]
DEVICE_HOURS = (8, 10)  # the devices publish over two hours of the day (Shanghai)


def sources_env(home: Path) -> dict[str, str]:
    """The NEURON_* variables of the sources this module prepares under `home`."""
    return {
        "NEURON_PLATFORM__URL": f"sqlite:///{home / 'sources' / 'platform.db'}",
        "NEURON_DOOR_ACCESS__FOLDER": str(home / "sources" / "door_access"),
        # The collector ran before the hub: what it landed is complete, no watermark to wait for.
        "NEURON_MQTT__REQUIRE_WATERMARK": "false",
    }


def prepare_sources(settings: Settings, day: date, parking: ParkingSimulator) -> set[str]:
    """Fill every non-parking source for `day` (the hub's keys made, control DB migrated),
    each simulating the hub's own community (its community_id); returns the raw identifiers
    they produced (to scan the outputs for)."""
    start, end = pipeline.local_day_window(settings, day)
    charges_updated_between(parking, start, end)
    folder = settings.home / "sources"
    folder.mkdir(parents=True, exist_ok=True)
    community = Community(community_id=settings.community_id)
    platform = PlatformSimulator(community, first_day=day)
    platform.write_days(f"sqlite:///{folder / 'platform.db'}", 1)
    door = DoorAccessVendor(community)
    door.export(folder / "door_access", day)
    fleet = DeviceFleet(Community(seed=3, households_count=150, community_id=settings.community_id))
    _land_device_day(settings, fleet, day)
    _alarm_lifecycle(settings, fleet, start)
    identifiers = {i for ids in platform.ground_truth().values() for i in ids}
    identifiers |= {i for ids in door.ground_truth().values() for i in ids}
    identifiers |= {i for ids in fleet.ground_truth().values() for i in ids}
    return identifiers


def _land_device_day(settings: Settings, fleet: DeviceFleet, day: date) -> None:
    """Devices → private mosquitto → the real collector, whose receive-time clock reads `day`."""
    first = datetime(day.year, day.month, day.day, DEVICE_HOURS[0], tzinfo=CST)
    # The collector stamps with time.time_ns(); only its module sees this clock, set back so
    # the devices' stretch lands inside the day the scheduler runs (yesterday).
    shift_ns = int((datetime.now(CST) - first).total_seconds() * 1e9)
    clock = SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("_")})
    clock.time_ns = lambda: time.time_ns() - shift_ns
    clock.time = lambda: time.time() - shift_ns / 1e9
    root = landing_root(settings)
    hours = timedelta(hours=DEVICE_HOURS[1] - DEVICE_HOURS[0])
    messages = messages_between(fleet, first, first + hours, DeviceFaults())
    with pytest.MonkeyPatch.context() as patch, Broker(settings.home.parent / "broker") as broker:
        patch.setattr(collector_module, "time", clock)
        config = MqttSettings(port=broker.port, protocol=broker.protocol, batch_max_ms=100)  # type: ignore[arg-type]
        with BackgroundCollector(settings, config) as collector:
            publish_messages(broker.host, broker.port, messages, protocol=broker.protocol)
            assert collector.wait_until(lambda s: s.received >= len(messages))
            end = datetime.fromtimestamp(clock.time(), CST)
            assert collector.wait_until(lambda s: (landed_through(root) or end) > end)


def _alarm_lifecycle(settings: Settings, fleet: DeviceFleet, start: datetime) -> None:
    """The relay's lifecycle logic records a few device alarms raised and cleared during the day."""
    keys = HubKeys.load(settings)

    lifecycles = Lifecycles(lambda _: 600.0, timedelta(minutes=5), DeviceTokens(keys).of, relay_id_key(keys))
    commit = Commit()
    devices = [*fleet.detectors[:6], *fleet.wristbands[:4], *fleet.fence[:3], *fleet.covers[:2]]
    for i, device in enumerate(devices):
        for n, state in enumerate(("raised", "cleared")):
            at = start + timedelta(hours=2 + i, seconds=30 * n)
            m = alarm(fleet, device, n, state, at.astimezone(CST))
            parsed = parse_alarm(m.topic, m.body(), fleet.community_id, 4096, relay_id_key(keys))
            assert parsed is not None
            event = lifecycles.on_device(parsed, at + timedelta(seconds=1))
            if event is not None:
                commit.events.append(event.row())
                commit.alarm(event.alarm, is_new=event.state == "raised")
    RelayStore(settings.control_url).write(commit)
