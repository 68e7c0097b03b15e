"""One conformance suite that every source stream passes (the Singer SDK's idea): schema,
cursor resume, idempotent re-run, fault handling, and no raw direct identifier past the
vault. Parametrised over tests/connectors/conformance.py's HARNESSES, one per registered
stream; each stream's checks share one source and one hub, in pipeline order."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import pipeline
from connectors.base import raw_schema
from connectors.registry import STREAMS
from pipeline.stages import source_stream
from tests.connectors.conformance import HARNESSES, SourceRun
from tests.leaks import find_leaks, texts_of_lake, texts_of_warehouse

STREAM_NAMES = sorted(HARNESSES)


def test_every_registered_stream_has_a_harness() -> None:
    assert sorted(STREAMS) == STREAM_NAMES


def staging(run: SourceRun, name: str) -> pa.Table:
    with duckdb.connect(str(run.settings.warehouse_file), read_only=True) as con:
        return con.sql(f"SELECT * EXCLUDE (_batch_id) FROM stg_{name} ORDER BY ALL").to_arrow_table()


@pytest.mark.parametrize("name", STREAM_NAMES)
def test_stream_conforms(name: str, tmp_path: Path) -> None:
    with HARNESSES[name](tmp_path) as run:
        settings = run.settings
        (start, end), (_, later) = run.windows[0], run.windows[1]

        # Schema: the extract yields the contract's raw columns.
        stream = source_stream(settings, name)
        batches = list(stream.extract(start, end))
        assert batches and sum(b.num_rows for b in batches) > 0
        assert all(b.schema.equals(raw_schema(stream.contract)) for b in batches)

        # Faults end in quarantine with reasons; good rows load; the cursor moves to the window's end.
        assert pipeline.cursor_value(settings, name) is None
        summary = pipeline.run_window(settings, name, start, end)
        assert summary["rows_good"] > 0
        assert summary["rows_quarantined"] > 0 and all(summary["quarantined_by_reason"])
        assert pipeline.cursor_value(settings, name) == end

        # Idempotent: the same window again leaves staging exactly as it was.
        first = staging(run, name)
        pipeline.run_window(settings, name, start, end)
        assert staging(run, name).equals(first)

        # Resume: the next run starts at the cursor and ends where it was asked to.
        resume = pipeline.cursor_value(settings, name)
        assert resume is not None
        pipeline.run_window(settings, name, resume, later)
        assert pipeline.cursor_value(settings, name) == later

        # Privacy: no raw direct identifier in staging, quarantine, the lake or work files.
        work = [(str(p), p.read_bytes().decode("utf-8", "ignore")) for p in settings.work_dir.rglob("*") if p.is_file()]
        texts = [*texts_of_warehouse(settings.warehouse_file), *texts_of_lake(settings.lake_path), *work]
        assert run.identifiers
        assert find_leaks(run.identifiers, texts) == []
