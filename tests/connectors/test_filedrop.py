"""The file-drop family: encodings detected (not guessed), truncated files failed with a
reason, the same bytes never loaded twice, complete files only, re-runs, crash recovery."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.door_access import REQUIRED
from connectors.filedrop import FileDrop
from connectors.filedrop_read import DropFileError, read_drop_file
from simulator.community import Community
from simulator.vendors import DoorAccessVendor, DoorFaults
from warehouse.control import session_scope
from warehouse.drop_ledger import ControlDropLedger
from warehouse.migrations import migrate
from warehouse.models import DropFile

DAY = date(2026, 11, 20)
W1 = (datetime(2026, 11, 20, 22, tzinfo=UTC), datetime(2026, 11, 21, 22, tzinfo=UTC))
W2 = (W1[1], W1[1] + timedelta(days=1))


@pytest.fixture(scope="module")
def vendor() -> DoorAccessVendor:
    return DoorAccessVendor(Community(households_count=60, buildings=3), DoorFaults.none())


@pytest.fixture
def drop(tmp_path: Path) -> FileDrop:
    url = f"sqlite:///{tmp_path / 'control.db'}"
    migrate(url)
    return FileDrop(tmp_path / "door", "door_access", ControlDropLedger(url))


def collect(drop: FileDrop, window: tuple[datetime, datetime] = W1) -> list[tuple[str, str, int]]:
    return [(f.name, f.encoding, len(f.table.rows)) for f in drop.collect(*window, REQUIRED)]


def ledger(drop: FileDrop) -> dict[str, tuple[str, str | None]]:
    with session_scope(drop.ledger.control_url) as s:  # type: ignore[attr-defined]
        return {f.file_name: (f.status, f.reason) for f in s.scalars(select(DropFile))}


def reason_of(drop: FileDrop, name: str) -> str:
    return (drop.folder / "failed" / f"{name}.reason.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("gbk", "gb18030"), ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig (byte-order mark)")],
)
def test_the_encoding_is_detected_verified_against_the_headers_and_recorded(
    drop: FileDrop, vendor: DoorAccessVendor, encoding: str, detected: str
) -> None:
    path = vendor.export(drop.folder, DAY, encoding=encoding)
    rows = vendor.rows_for_day(DAY)
    assert collect(drop) == [(path.name, detected, len(rows))]
    assert (drop.folder / "processed" / path.name).exists() and not path.exists()
    with session_scope(drop.ledger.control_url) as s:  # type: ignore[attr-defined]
        entry = s.scalars(select(DropFile)).one()
        assert (entry.status, entry.encoding, entry.rows) == ("accepted", detected, len(rows))


def test_a_gbk_file_reads_back_the_vendors_chinese_exactly(vendor: DoorAccessVendor, tmp_path: Path) -> None:
    path = vendor.export(tmp_path, DAY, encoding="gbk")
    table = read_drop_file(path.name, path.read_bytes(), REQUIRED)
    first = dict(zip(table.headers, table.rows[0], strict=True))
    expected = vendor.rows_for_day(DAY)[0]
    assert first == {k: (v.strip() or None) for k, v in expected.items()}


def test_a_truncated_file_goes_to_failed_with_the_reason(drop: FileDrop, vendor: DoorAccessVendor) -> None:
    path = vendor.export(drop.folder, DAY, truncate=True)
    assert collect(drop) == []
    assert (drop.folder / "failed" / path.name).exists()
    reason = reason_of(drop, path.name)
    assert "truncated: the last line" in reason and "of 10 fields" in reason
    assert ledger(drop)[path.name][0] == "failed"


def test_a_file_in_mixed_encodings_fails_saying_what_was_tried(drop: FileDrop, vendor: DoorAccessVendor) -> None:
    path = vendor.export(drop.folder, DAY, encoding="mixed")
    assert collect(drop) == []
    reason = reason_of(drop, path.name)
    assert "cannot decode" in reason and "utf-8: invalid byte" in reason and "gb18030" in reason


def test_the_same_file_twice_is_loaded_once_whatever_its_name(drop: FileDrop, vendor: DoorAccessVendor) -> None:
    first = vendor.export(drop.folder, DAY)
    assert len(collect(drop)) == 1
    again = vendor.export(drop.folder, DAY)  # the vendor's uploader retried
    renamed = vendor.export(drop.folder, DAY, name="门禁记录_20261120(1).csv")
    assert collect(drop, W2) == []
    assert "duplicate: the same bytes were loaded as " + first.name in reason_of(drop, renamed.name)
    assert (drop.folder / "failed").joinpath(again.name).exists()
    assert [s for s, _ in ledger(drop).values()] == ["accepted"]


def test_only_complete_files_are_taken(drop: FileDrop, vendor: DoorAccessVendor) -> None:
    path = vendor.export(drop.folder, DAY)
    partial = path.with_name(path.name + ".tmp")
    os.replace(path, partial)  # the vendor is still writing it
    assert collect(drop) == [] and partial.exists()
    os.replace(partial, path)
    assert len(collect(drop, W2)) == 1


def test_a_rerun_of_a_window_reads_the_files_it_took(drop: FileDrop, vendor: DoorAccessVendor) -> None:
    vendor.export(drop.folder, DAY)
    first = collect(drop)
    assert len(first) == 1
    assert collect(drop) == first  # the re-run reads the same file from processed/
    assert collect(drop, W2) == []  # the next window does not take it again


def test_a_claim_left_by_a_crashed_run_is_undone(drop: FileDrop, vendor: DoorAccessVendor) -> None:
    path = vendor.export(drop.folder, DAY)
    os.replace(path, drop.folder / "processing" / path.name)  # ... and the worker died
    assert [name for name, _, _ in collect(drop)] == [path.name]


def test_xlsx_is_read_and_a_cut_workbook_fails(drop: FileDrop, vendor: DoorAccessVendor) -> None:
    path = vendor.export(drop.folder, DAY, fmt="xlsx")
    assert collect(drop) == [(path.name, "xlsx", len(vendor.rows_for_day(DAY)))]
    broken = vendor.export(drop.folder, DAY + timedelta(days=1), fmt="xlsx")
    broken.write_bytes(broken.read_bytes()[:2000])
    assert collect(drop, W2) == []
    assert "not a complete XLSX workbook" in reason_of(drop, broken.name)


def test_reasons_never_carry_a_value(drop: FileDrop, vendor: DoorAccessVendor) -> None:
    for kind in ("truncate", "mixed"):
        vendor.export(drop.folder, DAY, truncate=kind == "truncate", encoding="mixed" if kind == "mixed" else "gbk")
        collect(drop)
    texts = " ".join(p.read_text(encoding="utf-8") for p in (drop.folder / "failed").glob("*.reason.txt"))
    truth = vendor.ground_truth()
    assert not [v for values in truth.values() for v in values if len(v) >= 5 and v in texts]


def test_an_empty_file_fails() -> None:
    with pytest.raises(DropFileError, match="empty"):
        read_drop_file("x.csv", b"", REQUIRED)
