"""One stream window through every stage, against the simulated vendor: idempotent re-runs,
crash recovery, quarantine, failure budget, late data, and no plate past the vault."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select

import pipeline
from kernel.errors import BatchRejected
from kernel.settings import Settings
from privacy.keys import init_keys
from simulator.parking import Faults, ParkingSimulator
from simulator.server import start_parking_api
from tests.conftest import make_settings
from tests.leaks import find_leaks, texts_of_lake, texts_of_warehouse
from warehouse.control import session_scope
from warehouse.migrations import migrate
from warehouse.models import LoadRecord, Partition

DAY = date(2026, 11, 20)


def staging_rows(settings: Settings) -> list[dict[str, object]]:
    with duckdb.connect(str(settings.warehouse_file), read_only=True) as con:
        query = "SELECT * EXCLUDE (_batch_id) FROM stg_vehicle_passes ORDER BY record_id"
        return con.sql(query).to_arrow_table().to_pylist()


def partitions(settings: Settings) -> list[tuple[str, str, int, str]]:
    with session_scope(settings.control_url) as s:
        rows = s.execute(
            select(Partition.consumer, Partition.partition_key, Partition.version, Partition.sha256).order_by(
                Partition.seq
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_the_same_window_twice_gives_the_same_rows_and_partitions(hub: Settings) -> None:
    start, end = pipeline.local_day_window(hub, DAY)
    first = pipeline.run_window(hub, "vehicle_passes", start, end)
    rows, published = staging_rows(hub), partitions(hub)
    second = pipeline.run_window(hub, "vehicle_passes", start, end)
    assert staging_rows(hub) == rows
    assert partitions(hub) == published  # no new version: the bytes are the same
    assert first["published"] > 0 and second["published"] == 0
    assert len(rows) == first["rows_good"]


def test_a_run_killed_after_extract_loses_and_doubles_nothing(hub: Settings) -> None:
    start, end = pipeline.local_day_window(hub, DAY)
    batch = pipeline.extract(hub, "vehicle_passes", start, end)  # ... and the worker dies here
    assert pipeline.cursor_value(hub, "vehicle_passes") is None  # not advanced before a load
    pipeline.validate(hub, batch)  # ... or here
    summary = pipeline.run_window(hub, "vehicle_passes", start, end)
    rows = staging_rows(hub)
    assert len(rows) == summary["rows_good"]
    assert len({r["record_id"] for r in rows}) == len(rows)  # record ids unique
    assert pipeline.cursor_value(hub, "vehicle_passes") == end


def test_faulty_records_are_quarantined_with_reasons_and_the_rest_loaded(
    hub: Settings, simulator: ParkingSimulator
) -> None:
    start, end = pipeline.local_day_window(hub, DAY)
    summary = pipeline.run_window(hub, "vehicle_passes", start, end)
    served = simulator.records_updated_between(start, end)
    faulty = {
        rid
        for rid, fault in simulator.fault_log.items()
        if fault in ("malformed_plate", "bad_pass_time", "bad_direction")
    }
    served_faulty = {r["record_id"] for r in served} & faulty
    with duckdb.connect(str(hub.warehouse_file), read_only=True) as con:
        quarantined = dict(
            con.execute(
                "SELECT record->>'record_id', reason FROM quarantine WHERE stream = 'vehicle_passes'"
            ).fetchall()
        )
    assert set(quarantined) == served_faulty
    assert all(quarantined.values())
    unique_ids = {r["record_id"] for r in served}
    assert summary["rows_good"] == len(unique_ids) - len(served_faulty)
    assert {r["record_id"] for r in staging_rows(hub)} == unique_ids - served_faulty


def test_a_batch_over_its_failure_budget_publishes_nothing(tmp_path: Path) -> None:
    broken = ParkingSimulator(seed=7, faults=Faults(malformed_rate=0.3))
    with start_parking_api(broken, token="test-token") as api:
        settings = make_settings(tmp_path, api.url)
        init_keys(settings)
        migrate(settings.control_url)
        start, end = pipeline.local_day_window(settings, DAY)
        with pytest.raises(BatchRejected, match="failure budget"):
            pipeline.run_window(settings, "vehicle_passes", start, end)
    assert partitions(settings) == []
    assert pipeline.cursor_value(settings, "vehicle_passes") is None
    with duckdb.connect(str(settings.warehouse_file), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] > 0
        assert con.execute("SELECT count(*) FROM stg_vehicle_passes").fetchall()[0][0] == 0
    with session_scope(settings.control_url) as s:
        assert s.scalars(select(LoadRecord.status)).all() == ["rejected"]


def test_late_records_republish_the_day_they_belong_to_as_a_new_version(hub: Settings) -> None:
    start, end = pipeline.local_day_window(hub, DAY)
    pipeline.run_window(hub, "vehicle_passes", start, end)
    before = {(c, k): v for c, k, v, _ in partitions(hub)}
    # The next day's window carries passes of DAY that the vendor sent late.
    next_start, next_end = pipeline.local_day_window(hub, date(2026, 11, 21))
    summary = pipeline.run_window(hub, "vehicle_passes", next_start, next_end)
    assert DAY.isoformat() in summary["days"]
    after = {(c, k): v for c, k, v, _ in partitions(hub)}
    day_key = f"community_id=music-square/day={DAY.isoformat()}"
    assert after[("district", day_key)] == before[("district", day_key)] + 1


def test_no_plate_reaches_staging_quarantine_lake_work_files_or_logs(
    hub: Settings, simulator: ParkingSimulator, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    for day in (date(2026, 11, 20), date(2026, 11, 21)):
        start, end = pipeline.local_day_window(hub, day)
        pipeline.run_window(hub, "vehicle_passes", start, end)
    plates = simulator.all_plates()
    assert len(plates) > 500
    work_files = [(str(p), p.read_bytes().decode("utf-8", "ignore")) for p in hub.work_dir.rglob("*") if p.is_file()]
    captured = capfd.readouterr()
    texts = [
        *texts_of_warehouse(hub.warehouse_file),
        *texts_of_lake(hub.lake_path),
        *work_files,
        ("logs", caplog.text),
        ("stdout", captured.out),
        ("stderr", captured.err),
    ]
    assert find_leaks(plates, texts) == []
    # The instrument works: the vault holds them, only encrypted, and decrypts to them.
    from privacy.keys import HubKeys
    from warehouse import vault

    batch = pipeline.batch_id_for("vehicle_passes", hub.community_id, *pipeline.local_day_window(hub, DAY))
    raw = vault.read(hub.vault_dir, HubKeys.load(hub), batch)
    assert find_leaks(plates, [("vault", str(raw.to_pylist()))]) != []
