"""D10: a dropped file has a size limit and is read in chunks — memory does not grow with it."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.door_access import REQUIRED
from connectors.filedrop import FileDrop
from connectors.filedrop_read import DropFileError, read_drop_file
from warehouse.drop_ledger import ControlDropLedger
from warehouse.migrations import migrate

HEADER = "时间,楼栋,单元,开门方式,人员类型,结果,备注\n"
ROW = "2026-11-20 08:15:03,1号楼,2单元,刷卡,业主,成功,{n}\n"


def big_csv(path: Path, rows: int) -> Path:
    with path.open("w", encoding="gb18030", newline="") as f:
        f.write(HEADER)
        for n in range(rows):
            f.write(ROW.format(n=n))
    return path


@pytest.mark.slow
def test_a_large_csv_is_checked_and_read_in_bounded_memory(tmp_path: Path) -> None:
    path = big_csv(tmp_path / "door.csv", 150_000)  # ~8 MB
    size = path.stat().st_size
    tracemalloc.start()
    try:
        table = read_drop_file(path.name, path, REQUIRED)
        count = sum(1 for _ in table.records())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (count, len(table.rows), table.encoding) == (150_000, 150_000, "gb18030")
    # Holding the file whole (bytes, text, rows) took many times its size; chunks take a few MB.
    assert peak < size / 4, (peak, size)


def test_a_file_over_the_limit_goes_to_failed_unread(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'control.db'}"
    migrate(url)
    drop = FileDrop(tmp_path / "door", "door_access", ControlDropLedger(url), max_bytes=100_000)
    big_csv(drop.folder / "incoming" / "door.csv", 5_000)
    window = (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
    assert list(drop.collect(*window, REQUIRED)) == []
    reason = (drop.folder / "failed" / "door.csv.reason.txt").read_text(encoding="utf-8")
    assert "over the 100000-byte limit" in reason


def test_an_enormous_cell_fails_the_file_with_a_line_number(tmp_path: Path) -> None:
    path = tmp_path / "door.csv"
    path.write_text(HEADER + ROW.format(n="x" * 1_000_000), encoding="utf-8")
    with pytest.raises(DropFileError, match="malformed CSV near line") as caught:
        read_drop_file(path.name, path, REQUIRED)
    assert "xxxx" not in str(caught.value)
