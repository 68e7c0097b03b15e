"""The WeChat platform's streams (SQL) end to end: faults to quarantine with the contract's
reasons, double ballots collapsed, schema drift by each contract's rule, and a run on
MariaDB and PostgreSQL as well as SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import pipeline
from connectors.sql import SqlSource
from kernel.errors import BatchRejected
from kernel.settings import Settings
from simulator.platform import PlatformSimulator
from simulator.platform_schema import KEYS
from tests.connectors.databases import ENGINES, temporary_database
from tests.connectors.hub_sources import hub_settings
from warehouse.control import session_scope
from warehouse.models import LoadRecord

DAY1, DAY2, DAY3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


@pytest.fixture
def platform(tmp_path: Path) -> tuple[PlatformSimulator, str]:
    url = f"sqlite:///{tmp_path / 'platform.db'}"
    sim = PlatformSimulator()
    sim.write_days(url, 2)
    return sim, url


def hub(tmp_path: Path, url: str) -> Settings:
    return hub_settings(tmp_path / "hub", platform=SqlSource(url=url, batch_size=300))


def detail(settings: Settings, batch_id: str) -> dict[str, object]:
    with session_scope(settings.control_url) as s:
        record = s.get(LoadRecord, batch_id)
        assert record is not None and record.detail
        return json.loads(record.detail)  # type: ignore[no-any-return]


@pytest.mark.parametrize("table", ["residents", "households", "fee_payments", "votes", "consent"])
def test_faulty_rows_are_quarantined_with_the_contracts_reason(
    tmp_path: Path, platform: tuple[PlatformSimulator, str], table: str
) -> None:
    sim, url = platform
    settings = hub(tmp_path, url)
    window = pipeline.local_day_window(settings, DAY1)
    summary = pipeline.run_window(settings, f"platform_{table}", *window)
    rows = sim.expected(table, *window)
    faulty = [r for r in rows if r.get("_fault", ("",))[0] in ("malformed", "out_of_range")]
    duplicates = [r for r in rows if r.get("_fault", ("",))[0] == "duplicate"]
    assert summary["rows_in"] == len(rows)
    assert summary["rows_quarantined"] == len(faulty) > 0
    assert summary["duplicates_dropped"] == len(duplicates)
    fields = {r["_fault"][1] for r in faulty}
    assert {reason.split(":")[0] for reason in summary["quarantined_by_reason"]} == fields
    assert summary["rows_good"] == len(rows) - len(faulty) - len(duplicates)


def test_a_double_submitted_ballot_counts_once_the_later_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'platform.db'}"
    from simulator.platform_faults import PlatformFaults

    sim = PlatformSimulator(faults=PlatformFaults(malformed_rate=0, out_of_range_rate=0, duplicate_rate=0.2))
    sim.write_days(url, 1)
    settings = hub(tmp_path, url)
    summary = pipeline.run_window(settings, "platform_votes", *pipeline.local_day_window(settings, DAY1))
    doubled = [k for (t, k), f in sim.fault_log.items() if t == "votes" and f[0] == "duplicate"]
    assert summary["duplicates_dropped"] == len(doubled) > 0
    import duckdb

    with duckdb.connect(str(settings.warehouse_file), read_only=True) as con:
        kept = {r[0] for r in con.execute("SELECT ballot_id FROM stg_platform_votes").fetchall()}
    assert set(doubled) <= kept  # the resubmission (the later ballot) is the one kept


def test_an_added_column_under_freeze_quarantines_and_fails_the_window(
    tmp_path: Path, platform: tuple[PlatformSimulator, str]
) -> None:
    sim, url = platform
    settings = hub(tmp_path, url)
    sim.drift(url, "added_column")  # the vendor's release adds residents.unionid
    window = pipeline.local_day_window(settings, DAY1)
    with pytest.raises(BatchRejected):
        pipeline.run_window(settings, "platform_residents", *window)
    report = detail(settings, pipeline.batch_id_for("platform_residents", settings.community_id, *window))
    assert report["schema_drift"] == ["unionid"]
    assert report["quarantined_by_reason"] == {"schema drift: unexpected field(s) unionid": report["rows_in"]}
    assert pipeline.cursor_value(settings, "platform_residents") is None


def test_an_added_column_under_evolve_is_accepted_and_reported(
    tmp_path: Path, platform: tuple[PlatformSimulator, str]
) -> None:
    _, url = platform
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE notices ADD COLUMN pinned BOOLEAN"))
    engine.dispose()
    settings = hub(tmp_path, url)
    summary = pipeline.run_window(settings, "platform_notices", *pipeline.local_day_window(settings, DAY1))
    assert summary["schema_drift"] == ["pinned"] and summary["rows_good"] > 0
    assert not any("drift" in reason for reason in summary["quarantined_by_reason"])


def test_a_renamed_column_and_a_changed_type_are_quarantined_with_their_reasons(
    tmp_path: Path, platform: tuple[PlatformSimulator, str]
) -> None:
    sim, url = platform
    sim.drift(url, "renamed_column")  # repairs.description -> content
    sim.drift(url, "changed_type")  # volunteers.hours -> text such as "2.5小时"
    sim.write_days(url, 1)
    settings = hub(tmp_path, url)
    window = pipeline.local_day_window(settings, DAY3)
    with pytest.raises(BatchRejected):  # every row lost its description: the window fails
        pipeline.run_window(settings, "platform_repairs", *window)
    repairs = detail(settings, pipeline.batch_id_for("platform_repairs", settings.community_id, *window))
    assert repairs["schema_drift"] == ["content"] and repairs["rows_good"] == 0
    assert set(repairs["quarantined_by_reason"]) == {"schema drift: unexpected field(s) content"}  # type: ignore[arg-type]
    volunteers = pipeline.run_window(settings, "platform_volunteers", *window)
    attended = [r for r in sim.expected("volunteers", *window) if r["hours"] is not None]
    assert volunteers["quarantined_by_reason"].get("hours: not a valid float64") == len(attended) > 0


@pytest.fixture(params=ENGINES)
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[PlatformSimulator, str]]:
    with temporary_database(request.param, tmp_path) as url:
        sim = PlatformSimulator()
        sim.write_days(url, 2)
        yield sim, url


def test_the_same_windows_load_the_same_rows_on_every_database(
    tmp_path: Path, any_engine: tuple[PlatformSimulator, str]
) -> None:
    sim, url = any_engine
    settings = hub(tmp_path, url)
    loaded = []
    for day in (DAY1, DAY2):
        window = pipeline.local_day_window(settings, day)
        summary = pipeline.run_window(settings, "platform_residents", *window)
        loaded.append((summary["rows_in"], summary["rows_good"]))
        assert summary["rows_in"] == len(sim.expected("residents", *window))
    assert pipeline.cursor_value(settings, "platform_residents") == pipeline.local_day_window(settings, DAY2)[1]
    assert loaded[0][0] > 1000 and sum(n for n, _ in loaded) == len(sim.tables["residents"])
    assert KEYS["residents"] == "resident_id"
