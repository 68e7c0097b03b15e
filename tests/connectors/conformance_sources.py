"""Conformance harnesses for issue 3's streams: parking charges (HTTP), door access (file
drop), intercom/CCTV (HTTP), and the WeChat platform's tables (SQL, a SQLite file).

Each yields a hub wired to the live simulated source, two consecutive windows, and every
raw identifier the source produced (see tests/connectors/conformance.py).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pipeline
from connectors.filedrop import FileDropSource
from connectors.intercom import HttpSource
from connectors.sql import SqlSource
from simulator.parking import Faults, ParkingSimulator
from simulator.parking_charges import charges_updated_between
from simulator.platform import PlatformSimulator
from simulator.server import start_parking_api
from simulator.vendors import DoorAccessVendor
from simulator.vendors_intercom import IntercomFaults, IntercomVendor
from simulator.vendors_server import start_intercom_api
from tests.conftest import TOKEN
from tests.connectors.hub_sources import hub_settings

PLATFORM_DAYS = 4  # windows: the last two days (each table has rows and faults in both)


def _identifiers(truth: dict[str, list[str]]) -> set[str]:
    return {value for values in truth.values() for value in values}


@contextmanager
def parking_charges(tmp: Path) -> Iterator[Any]:
    """System 1's charges over the parking vendor's HTTP API."""
    from tests.connectors.conformance import SourceRun

    sim = ParkingSimulator(seed=5, faults=Faults(error_every=9))
    with start_parking_api(sim, token=TOKEN) as api:
        settings = hub_settings(tmp, api.url)
        windows = [pipeline.local_day_window(settings, date(2026, 11, d)) for d in (20, 21)]
        charges_updated_between(sim, windows[0][0], windows[-1][1])
        yield SourceRun(settings, windows, sim.all_plates())


@contextmanager
def door_access(tmp: Path) -> Iterator[Any]:
    """System 4's daily GBK exports in a drop folder (both days dropped before the first run)."""
    from tests.connectors.conformance import SourceRun

    vendor = DoorAccessVendor()
    folder = tmp / "drops" / "door_access"
    for day in (20, 21):
        vendor.export(folder, date(2026, 11, day))
    settings = hub_settings(tmp, door_access=FileDropSource(folder=folder))
    windows = [pipeline.local_day_window(settings, date(2026, 11, d)) for d in (22, 23)]
    yield SourceRun(settings, windows, _identifiers(vendor.ground_truth()))


def _intercom(resource: str) -> Any:
    @contextmanager
    def harness(tmp: Path) -> Iterator[Any]:
        from tests.connectors.conformance import SourceRun

        vendor = IntercomVendor(faults=IntercomFaults(malformed_rate=0.02, out_of_range_rate=0.01, error_every=7))
        with start_intercom_api(vendor, "vendor-token") as api:
            source = HttpSource(base_url=api.url, token="vendor-token", page_size=200, max_retries=3)
            settings = hub_settings(tmp, intercom=source)
            windows = [pipeline.local_day_window(settings, date(2026, 11, d)) for d in (20, 21)]
            yield SourceRun(settings, windows, _identifiers(vendor.ground_truth()))

    harness.__doc__ = f"System 5's `{resource}` over the intercom vendor's open API."
    return harness


@cache
def _platform_database() -> tuple[Path, frozenset[str]]:
    """One platform database for the session, written once (copied per harness)."""
    folder = Path(tempfile.mkdtemp(prefix="neuron-platform-"))
    sim = PlatformSimulator()
    sim.write_days(f"sqlite:///{folder / 'platform.db'}", PLATFORM_DAYS)
    return folder / "platform.db", frozenset(_identifiers(sim.ground_truth()))


def _platform(table: str) -> Any:
    @contextmanager
    def harness(tmp: Path) -> Iterator[Any]:
        from tests.connectors.conformance import SourceRun

        database, identifiers = _platform_database()
        copy = tmp / "platform.db"
        shutil.copyfile(database, copy)
        settings = hub_settings(tmp, platform=SqlSource(url=f"sqlite:///{copy}", batch_size=250))
        days = [PlatformSimulator().first_day.replace(day=d) for d in (PLATFORM_DAYS - 1, PLATFORM_DAYS)]
        windows = [pipeline.local_day_window(settings, d) for d in days]
        yield SourceRun(settings, windows, set(identifiers))

    harness.__doc__ = f"System 9's `{table}` table in the platform's database (SQL)."
    return harness


PLATFORM_TABLES = [
    "residents",
    "households",
    "notices",
    "fee_payments",
    "votes",
    "volunteers",
    "repairs",
    "circle_posts",
    "consent",
]

SOURCE_HARNESSES: dict[str, Any] = {
    "parking_charges": parking_charges,
    "door_access": door_access,
    "intercom_calls": _intercom("calls"),
    "camera_health": _intercom("camera-health"),
    "video_events": _intercom("events"),
    **{f"platform_{t}": _platform(t) for t in PLATFORM_TABLES},
}
