"""Fixtures shared across the suite: a private hub, the parking simulator, databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.settings import REPO_ROOT, HttpSource, Settings
from privacy.keys import init_keys
from simulator.parking import Faults, ParkingSimulator
from simulator.server import RunningServer, start_parking_api
from tests.services import temporary_postgres_database
from warehouse.migrations import migrate

TOKEN = "test-token"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def control_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty control database: a SQLite file, and PostgreSQL where the server runs."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'control.db'}"
    else:
        with temporary_postgres_database() as url:
            yield url


@pytest.fixture
def simulator() -> ParkingSimulator:
    """Music Square's parking system with the default faults."""
    return ParkingSimulator(seed=7, faults=Faults())


@pytest.fixture
def vendor(simulator: ParkingSimulator) -> Iterator[RunningServer]:
    """The simulated parking vendor API, on loopback."""
    with start_parking_api(simulator, token=TOKEN) as server:
        yield server


def make_settings(home: Path, vendor_url: str = "http://127.0.0.1:9", **overrides: object) -> Settings:
    """Settings of a private hub under `home`, whatever the caller's environment says."""
    values: dict[str, object] = {
        "home": home,
        "state_dir": Path("var"),
        "lake_dir": Path("lake"),
        "warehouse_path": Path("var/warehouse.duckdb"),
        "control_db_url": "",
        "master_secret": None,
        "policies_dir": REPO_ROOT / "config" / "policies",
        "parking": HttpSource(base_url=vendor_url, token=TOKEN, max_retries=3, timeout_seconds=5),
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def hub(tmp_path: Path, vendor: RunningServer) -> Settings:
    """An initialised hub (keys, control DB) reading the simulated vendor."""
    settings = make_settings(tmp_path / "hub", vendor.url)
    init_keys(settings)
    migrate(settings.control_url)
    return settings
