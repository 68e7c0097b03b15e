"""Issue 16, item 2: every raw copy has a lifecycle. The door-access exports are kept only
sealed (never in clear in processed/ or failed/), a re-run of a window opens them, retention
seals what an older hub left in clear and deletes them after `vault_retention_days` (the
ledger stays); work files go once loaded; the databases and the state folder are the hub
user's only."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import pipeline
from connectors.door_access import REQUIRED
from connectors.filedrop import FileDrop, FileDropSource
from kernel.errors import FatalError
from simulator.community import Community
from simulator.vendors import DoorAccessVendor, DoorFaults
from tests.connectors.hub_sources import hub_settings
from tests.leaks import find_leaks
from warehouse.control import session_scope
from warehouse.drop_ledger import ControlDropLedger
from warehouse.models import DropFile, LoadRecord
from warehouse.models.audit import AuditEntry
from warehouse.retention import run_retention

DAY = date(2026, 11, 20)


@pytest.fixture
def vendor() -> DoorAccessVendor:
    return DoorAccessVendor(Community(households_count=40, buildings=2), DoorFaults.none())


def _hub(tmp_path: Path):  # type: ignore[no-untyped-def]
    return hub_settings(tmp_path / "hub", door_access=FileDropSource(folder=tmp_path / "drop"))


def _identifiers(vendor: DoorAccessVendor) -> set[str]:
    return {v for values in vendor.ground_truth().values() for v in values}


def _kept(folder: Path) -> list[Path]:
    return sorted(p for sub in ("processed", "failed") for p in (folder / sub).iterdir())


def _extracted(settings, window) -> int:  # type: ignore[no-untyped-def]
    batch = pipeline.extract(settings, "door_access", *window)
    with session_scope(settings.control_url) as session:
        record = session.get(LoadRecord, batch)
        assert record is not None
        return record.rows_extracted


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_accepted_export_is_kept_only_sealed_and_a_rerun_opens_it(tmp_path: Path, vendor: DoorAccessVendor) -> None:
    settings = _hub(tmp_path)
    vendor.export(tmp_path / "drop", DAY)
    window = pipeline.local_day_window(settings, DAY)
    rows = _extracted(settings, window)
    assert rows == len(vendor.rows_for_day(DAY))
    kept = _kept(tmp_path / "drop")
    assert [p.name for p in kept] and all(p.name.endswith(".sealed") for p in kept)
    assert all(_mode(p) == 0o600 for p in kept)
    assert _mode(tmp_path / "drop" / "processed") == 0o700 and _mode(tmp_path / "drop" / "failed") == 0o700
    texts = [(str(p), p.read_bytes().decode("utf-8", "ignore")) for p in kept]
    assert find_leaks(_identifiers(vendor), texts) == []
    assert _extracted(settings, window) == rows  # the re-run opens the sealed copy


def test_retention_seals_what_an_older_hub_left_in_clear_then_deletes_it_on_time(
    tmp_path: Path, vendor: DoorAccessVendor
) -> None:
    settings = _hub(tmp_path)
    window = pipeline.local_day_window(settings, DAY)
    # An older hub (no sealer) accepted the export and kept it in clear.
    vendor.export(tmp_path / "drop", DAY)
    old = FileDrop(tmp_path / "drop", "door_access", ControlDropLedger(settings.control_url))
    assert sum(len(f.table.rows) for f in old.collect(*window, REQUIRED)) > 0
    assert [p.suffix for p in _kept(tmp_path / "drop")] == [".csv"]

    report = run_retention(settings)
    assert len(report.drop_files_sealed) == 1 and report.drop_files == []
    assert [p.suffix for p in _kept(tmp_path / "drop")] == [".sealed"]
    with session_scope(settings.control_url) as session:
        assert [f.stored_as for f in session.scalars(select(DropFile))] == [f"processed/{vendor_name(tmp_path)}"]
    rows = _extracted(settings, window)  # the re-run follows the ledger to the sealed copy
    assert rows == len(vendor.rows_for_day(DAY))

    later = datetime.now(UTC) + timedelta(days=settings.vault_retention_days, hours=1)
    report = run_retention(settings, now=later)
    assert len(report.drop_files) == 1 and _kept(tmp_path / "drop") == []
    with session_scope(settings.control_url) as session:
        assert session.scalars(select(DropFile)).all()  # the ledger outlives the file: no reload of the same bytes
        details = [
            e.detail for e in session.scalars(select(AuditEntry).where(AuditEntry.action.in_(["seal", "purge"])))
        ]
    assert any('"drop_folder"' in (d or "") for d in details)
    with pytest.raises(FatalError, match="retention deleted it"):
        pipeline.extract(settings, "door_access", *window)


def vendor_name(tmp_path: Path) -> str:
    """The sealed copy's name in processed/ (the vendor's file name + .sealed)."""
    return next((tmp_path / "drop" / "processed").iterdir()).name


def test_work_files_go_once_loaded_and_the_state_is_private(tmp_path: Path, vendor: DoorAccessVendor) -> None:
    settings = _hub(tmp_path)
    vendor.export(tmp_path / "drop", DAY)
    window = pipeline.local_day_window(settings, DAY)
    batch = pipeline.extract(settings, "door_access", *window)
    pipeline.validate(settings, batch)
    assert list(settings.work_dir.rglob("*.parquet"))
    pipeline.load(settings, batch)
    assert not list(settings.work_dir.rglob("*"))
    control = Path(settings.control_url.removeprefix("sqlite:///"))
    assert _mode(settings.state_path) == 0o700 and _mode(settings.keys_dir) == 0o700
    assert _mode(control) == 0o600 and _mode(settings.warehouse_file) == 0o600
    assert _mode(settings.work_dir) == 0o700
    # A failed run's work folder is deleted by retention after a day.
    stale = settings.work_dir / "stale-batch"
    stale.mkdir()
    report = run_retention(settings, now=datetime.now(UTC) + timedelta(days=2))
    assert report.work_batches == ["stale-batch"] and not stale.exists()
