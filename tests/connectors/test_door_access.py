"""System 4 end to end: the vendor's GBK export through the file drop and the pipeline —
codes translated, the 卡号/用户 column split by method, faults quarantined, late rows
republishing their day, drift by the contract's rule."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

import pipeline
from connectors.filedrop import FileDropSource
from kernel.errors import BatchRejected
from kernel.settings import Settings
from pipeline.stages import source_stream
from simulator.vendors import DoorAccessVendor
from tests.connectors.hub_sources import hub_settings
from warehouse.control import session_scope
from warehouse.models import LoadRecord

DAY = date(2026, 11, 20)


@pytest.fixture(scope="module")
def vendor() -> DoorAccessVendor:
    return DoorAccessVendor()


def hub(tmp_path: Path) -> Settings:
    return hub_settings(tmp_path / "hub", door_access=FileDropSource(folder=tmp_path / "drop"))


def test_the_export_is_translated_and_split_by_method(tmp_path: Path, vendor: DoorAccessVendor) -> None:
    settings = hub(tmp_path)
    vendor.export(tmp_path / "drop", DAY)
    stream = source_stream(settings, "door_access")
    rows = [r for b in stream.extract(*pipeline.local_day_window(settings, DAY)) for r in b.to_pylist()]
    assert len(rows) == len(vendor.rows_for_day(DAY))
    face = next(r for r in rows if r["method"] == "face")
    card = next(r for r in rows if r["method"] == "card")
    wechat = next(r for r in rows if r["method"] == "wechat")
    assert face["person_name"] and not face["card_no"] and not face["phone"]
    assert len(card["card_no"]) == 8 and not card["person_name"]
    assert wechat["phone"] and wechat["phone"].startswith("1")
    assert face["event_time"].endswith("+08:00") and face["building"].isdigit()
    assert {r["source_file"] for r in rows} == {f"门禁记录_{DAY:%Y%m%d}.csv"}
    assert all(r["_extra"] is None for r in rows)


def test_faults_are_quarantined_and_duplicates_dropped(tmp_path: Path, vendor: DoorAccessVendor) -> None:
    settings = hub(tmp_path)
    vendor.export(tmp_path / "drop", DAY)
    summary = pipeline.run_window(settings, "door_access", *pipeline.local_day_window(settings, DAY))
    ids = {r["记录ID"] for r in vendor.rows_for_day(DAY)}
    malformed = {k for k, v in vendor.fault_log.items() if k in ids and v.startswith("malformed")}
    doubled = {k for k, v in vendor.fault_log.items() if k in ids and v == "duplicate"}
    assert summary["rows_quarantined"] == len(malformed) > 0
    assert summary["duplicates_dropped"] == len(doubled) > 0
    with duckdb.connect(str(settings.warehouse_file), read_only=True) as con:
        quarantined = {r[0] for r in con.execute("SELECT record->>'record_id' FROM quarantine").fetchall()}
    assert quarantined == malformed


def test_late_rows_from_offline_controllers_touch_the_day_before(tmp_path: Path, vendor: DoorAccessVendor) -> None:
    settings = hub(tmp_path)
    vendor.export(tmp_path / "drop", DAY)
    summary = pipeline.run_window(settings, "door_access", *pipeline.local_day_window(settings, DAY))
    assert summary["days"] == [date(2026, 11, 19).isoformat(), DAY.isoformat()]


@pytest.mark.parametrize("drift", ["added_column", "renamed_column"])
def test_drift_in_the_export_fails_the_window_under_freeze(
    tmp_path: Path, vendor: DoorAccessVendor, drift: str
) -> None:
    settings = hub(tmp_path)
    vendor.export(tmp_path / "drop", DAY, drift=drift)
    window = pipeline.local_day_window(settings, DAY)
    with pytest.raises(BatchRejected):
        pipeline.run_window(settings, "door_access", *window)
    with session_scope(settings.control_url) as s:
        record = s.get(LoadRecord, pipeline.batch_id_for("door_access", settings.community_id, *window))
        assert record is not None and record.detail
        report = json.loads(record.detail)
    assert report["schema_drift"] == [{"added_column": "体温", "renamed_column": "用户信息"}[drift]]


def test_times_turned_into_epoch_milliseconds_are_quarantined(tmp_path: Path, vendor: DoorAccessVendor) -> None:
    settings = hub(tmp_path)
    vendor.export(tmp_path / "drop", DAY, drift="changed_type")
    window = pipeline.local_day_window(settings, DAY)
    with pytest.raises(BatchRejected):
        pipeline.run_window(settings, "door_access", *window)
    with session_scope(settings.control_url) as s:
        record = s.get(LoadRecord, pipeline.batch_id_for("door_access", settings.community_id, *window))
        assert record is not None and record.detail
    assert "event_time: not a valid timestamp" in json.loads(record.detail)["quarantined_by_reason"]
