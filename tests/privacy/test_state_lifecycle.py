"""Issue 16, item 2: after a whole simulated day (every source, every stream, without
Airflow) and a retention run, no file the hub wrote outside the encrypted vault and the
MQTT landing holds a raw identifier the simulator generated, and nothing the hub wrote is
readable by its group or the world (files 0600, folders 0700).

This runs with pytest's own umask (usually 022), not the CLI's 077: the stores must set
their modes themselves.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

import pipeline
from connectors.mqtt import landing_root
from kernel.settings import load_settings
from privacy.keys import init_keys
from simulator.parking import ParkingSimulator
from simulator.server import start_parking_api
from tests.conftest import TOKEN
from tests.dags.day_sources import ALL_STREAMS, prepare_sources, sources_env
from tests.dags.scheduler_day import simulated_day
from tests.leaks import find_leaks, texts_of_warehouse
from warehouse.migrations import migrate
from warehouse.retention import run_retention

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # 7–10 min on the shared two cores

# Every source is prepared and landed (door-access drop, platform DB, MQTT collector, relay);
# one stream per source family (and per kind of identifier) runs through every stage, so the
# test stays within minutes: the stages are the same for the rest.
DAY_STREAMS = [
    "vehicle_passes",
    "parking_charges",
    "door_access",
    "alarm_lifecycle",
    "platform_households",
    "platform_repairs",
    "platform_volunteers",
    "elderly_care",
    "home_safety",
]

SECRET = "c3RhdGUtbGlmZWN5Y2xlLXRlc3QtbWFzdGVyLXNlY3JldCE="


def _readable(path: Path) -> str:
    if path.suffix == ".duckdb":
        return " ".join(text for _, text in texts_of_warehouse(path))
    return path.read_bytes().decode("utf-8", errors="ignore")


def test_a_whole_day_leaves_no_raw_identifier_and_no_open_file_in_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "hub"
    for name, value in sources_env(home).items():
        monkeypatch.setenv(name, value)
    sim = ParkingSimulator(seed=11)
    caplog.set_level(logging.INFO)
    with start_parking_api(sim, token=TOKEN) as vendor:
        settings = load_settings(
            home=home,
            master_secret=SECRET,
            control_db_url="",
            parking={"base_url": vendor.url, "token": TOKEN},
        )
        init_keys(settings)
        migrate(settings.control_url)
        identifiers = prepare_sources(settings, simulated_day(), sim) | sim.all_plates()
        start, end = pipeline.local_day_window(settings, simulated_day())
        days: set[str] = set()
        assert set(DAY_STREAMS) <= set(ALL_STREAMS)
        for stream in DAY_STREAMS:  # every stage, as the ingest DAGs run them; marts and publish once
            batch = pipeline.extract(settings, stream, start, end)
            pipeline.validate(settings, batch)
            days |= set(pipeline.load(settings, batch))
        pipeline.build(settings)
        pipeline.publish(settings, sorted(days))
        run_retention(settings)

    # Raw copies allowed: the encrypted vault, the collector's landing (encrypted? no: the
    # landing is the MQTT raw copy, deleted once landed — its lifecycle is the collector's),
    # and the sources themselves (the platform's database, the vendor's incoming/ folder).
    exempt = [settings.vault_dir, landing_root(settings), home / "sources" / "platform.db"]
    written = [p for p in sorted(home.rglob("*")) if not any(p == e or e in p.parents for e in exempt)]
    files = [p for p in written if p.is_file()]
    door = home / "sources" / "door_access"
    assert not list((door / "processed").glob("*.csv")), "an accepted export stayed in clear"
    assert list((door / "processed").glob("*.sealed"))
    texts = [(str(p), _readable(p)) for p in files]
    texts.append(("logs", "\n".join(r.getMessage() for r in caplog.records)))
    assert find_leaks(identifiers, texts) == []
    assert not list(settings.work_dir.rglob("*.parquet")), "work files outlived their load"

    hub_owned = [p for p in written if settings.state_path in p.parents or p == settings.state_path]
    hub_owned += [p for p in written if door / "processed" in p.parents or door / "failed" in p.parents]
    hub_owned += [p for p in written if settings.lake_path in p.parents]
    open_to_others = sorted(
        f"{p.relative_to(home)} {stat.filemode(p.stat().st_mode)}" for p in hub_owned if p.stat().st_mode & 0o077
    )
    assert open_to_others == []
