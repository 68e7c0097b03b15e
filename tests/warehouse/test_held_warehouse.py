"""A window's load, marts and publish in one held warehouse: the same rows and the same published
bytes as stages that each open it, and the file lock is the block's only while it lasts."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pipeline
from kernel.settings import Settings
from tests.warehouse.test_pipeline import partitions, staging_rows
from warehouse import staging

DAY = date(2026, 11, 20)


def _other_process_can_open(settings: Settings) -> bool:
    probe = f"import duckdb; duckdb.connect({str(settings.warehouse_file)!r}, read_only=True).close()"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60).returncode == 0


def test_a_held_window_gives_the_bytes_of_stages_that_each_open_it(hub: Settings) -> None:
    start, end = pipeline.local_day_window(hub, DAY)
    batch = pipeline.extract(hub, "vehicle_passes", start, end)
    pipeline.validate(hub, batch)
    days = pipeline.load(hub, batch)  # each stage opens and closes the warehouse
    pipeline.build(hub)
    assert pipeline.publish(hub, days)
    rows, published = staging_rows(hub), partitions(hub)

    batch = pipeline.extract(hub, "vehicle_passes", start, end)
    pipeline.validate(hub, batch)
    with pipeline.hold_warehouse(hub) as con:
        assert not _other_process_can_open(hub)  # one writer: the block holds the lock
        days = pipeline.load(hub, batch)
        pipeline.build(hub)
        with staging.warehouse(hub.warehouse_file) as inner:
            assert inner is con  # the stages use the held connection, not one of their own
        assert pipeline.publish(hub, days) == []  # the same bytes: no new version
    assert staging_rows(hub) == rows and partitions(hub) == published
    assert not staging._HELD
    assert _other_process_can_open(hub)  # released when the block ends
