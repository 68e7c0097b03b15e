"""Harnesses for the connector conformance suite: for each stream, a real source (simulator
over its real protocol) and what the suite needs to know about it.

A harness is a context manager yielding a `SourceRun`: hub settings pointing at a running
simulated source, two consecutive windows with data, and the raw identifiers the source
produced (to prove none gets past staging). Add one harness per stream to HARNESSES.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pipeline
from kernel.settings import Settings
from privacy.keys import init_keys
from simulator.parking import Faults, ParkingSimulator
from simulator.server import start_parking_api
from tests.conftest import TOKEN, make_settings
from tests.connectors.conformance_mqtt import MQTT_HARNESSES
from tests.connectors.conformance_relay import RELAY_HARNESSES
from tests.connectors.conformance_sources import SOURCE_HARNESSES
from warehouse.migrations import migrate


@dataclass
class SourceRun:
    """A hub wired to a live simulated source."""

    settings: Settings
    windows: list[tuple[datetime, datetime]]  # consecutive, each with data and some faults
    identifiers: set[str]  # every raw direct identifier the source produced


Harness = Callable[[Path], AbstractContextManager[SourceRun]]


def initialised(settings: Settings) -> Settings:
    """Keys and control DB for a fresh hub."""
    init_keys(settings)
    migrate(settings.control_url)
    return settings


@contextmanager
def vehicle_passes(tmp: Path) -> Iterator[SourceRun]:
    """System 1 over the parking vendor's HTTP API."""
    sim = ParkingSimulator(seed=5, faults=Faults(error_every=9))
    with start_parking_api(sim, token=TOKEN) as api:
        settings = initialised(make_settings(tmp, api.url))
        windows = [pipeline.local_day_window(settings, date(2026, 11, d)) for d in (20, 21)]
        sim.records_updated_between(windows[0][0], windows[-1][1])
        yield SourceRun(settings, windows, sim.all_plates())


HARNESSES: dict[str, Harness] = {
    "vehicle_passes": vehicle_passes,
    **SOURCE_HARNESSES,
    **MQTT_HARNESSES,
    **RELAY_HARNESSES,
}
