"""One conformance suite that every source stream passes (the Singer SDK's idea): schema,
cursor resume, idempotent re-run, fault handling, and no raw direct identifier past staging.
Parametrised over tests/connectors/conformance.py's HARNESSES, one per registered stream."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from connectors.base import raw_schema
from connectors.registry import STREAMS, make_stream
from tests.connectors.conformance import HARNESSES, SourceRun
from tests.leaks import find_leaks, texts_of_lake, texts_of_warehouse
from warehouse import pipeline

STREAM_NAMES = sorted(HARNESSES)


def test_every_registered_stream_has_a_harness() -> None:
    assert sorted(STREAMS) == STREAM_NAMES


@pytest.fixture(params=STREAM_NAMES)
def source(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    with HARNESSES[request.param](tmp_path) as run:
        run.stream = request.param  # type: ignore[attr-defined]
        yield run


def stream_of(run: SourceRun) -> str:
    return run.stream  # type: ignore[attr-defined,no-any-return]


def staging(run: SourceRun) -> pa.Table:
    table = f"stg_{stream_of(run)}"
    with duckdb.connect(str(run.settings.warehouse_file), read_only=True) as con:
        return con.sql(f"SELECT * EXCLUDE (_batch_id) FROM {table} ORDER BY ALL").to_arrow_table()


def test_extract_yields_the_contracts_raw_schema(source: SourceRun) -> None:
    stream = make_stream(stream_of(source), source.settings)
    batches = list(stream.extract(*source.windows[0]))
    assert batches and sum(b.num_rows for b in batches) > 0
    assert all(b.schema.equals(raw_schema(stream.contract)) for b in batches)


def test_cursor_resumes_where_the_last_load_ended(source: SourceRun) -> None:
    name = stream_of(source)
    (start, end), (_, later) = source.windows[0], source.windows[1]
    assert pipeline.cursor_value(source.settings, name) is None
    pipeline.run_window(source.settings, name, start, end)
    assert pipeline.cursor_value(source.settings, name) == end
    resume = pipeline.cursor_value(source.settings, name)
    assert resume is not None
    pipeline.run_window(source.settings, name, resume, later)
    assert pipeline.cursor_value(source.settings, name) == later


def test_rerunning_a_window_changes_nothing(source: SourceRun) -> None:
    name = stream_of(source)
    pipeline.run_window(source.settings, name, *source.windows[0])
    first = staging(source)
    pipeline.run_window(source.settings, name, *source.windows[0])
    assert staging(source).equals(first)


def test_faults_end_in_quarantine_with_reasons(source: SourceRun) -> None:
    name = stream_of(source)
    summary = pipeline.run_window(source.settings, name, *source.windows[0])
    assert summary["rows_quarantined"] > 0
    assert all(reason for reason in summary["quarantined_by_reason"])
    assert summary["rows_good"] > 0


def test_no_raw_direct_identifier_gets_past_the_vault(source: SourceRun) -> None:
    name = stream_of(source)
    for window in source.windows:
        pipeline.run_window(source.settings, name, *window)
    work = [
        (str(p), p.read_bytes().decode("utf-8", "ignore")) for p in source.settings.work_dir.rglob("*") if p.is_file()
    ]
    texts = [*texts_of_warehouse(source.settings.warehouse_file), *texts_of_lake(source.settings.lake_path), *work]
    assert source.identifiers
    assert find_leaks(source.identifiers, texts) == []
