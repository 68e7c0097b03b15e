"""Record formats: the column-at-a-time ndjson writer says byte for byte what the row writer
says, for every type a feed uses (and a few it might)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa

from api.formats import csv_text, ndjson, ndjson_tables
from api.records import Cursor, Page

TABLE = pa.table(
    {
        "community_id": ["music-square", None, '音乐广场 "quoted" \\ 100%', "tab\there"],
        "day": [date(2026, 11, 20), date(2026, 11, 21), None, date(2026, 1, 1)],
        "hour_start": [
            datetime(2026, 11, 20, 8, tzinfo=UTC),
            datetime(2026, 11, 20, 8, 0, 0, 123456, tzinfo=UTC),
            None,
            datetime(1969, 12, 31, 23, 59, 59, 250000, tzinfo=UTC),  # before the epoch: floored, not truncated
        ],
        "naive": [datetime(2026, 11, 20, 8), None, datetime(2026, 11, 20, 8, 1), datetime(2026, 1, 1)],
        "entries": pa.array([0, -5, None, 2**62], pa.int64()),
        "reading": [1.5, math.nan, None, math.inf],
        "small": pa.array([1, 2, None, 4], pa.int8()),
        "flag": [True, False, None, True],
        "amount": pa.array([Decimal("1.10"), None, Decimal("-3.00"), Decimal("0.01")], pa.decimal128(6, 2)),
        "blob": [b"\x00\x01", None, b"", b"abc"],
    }
)


def test_column_writer_matches_the_row_writer() -> None:
    page = Page(chunks=[TABLE, TABLE.slice(1, 2)], next_cursor=Cursor())
    assert ndjson_tables(page.chunks) == ndjson(page.rows)


def test_empty_pages_and_tables() -> None:
    assert ndjson_tables([]) == b"" == ndjson_tables([TABLE.slice(0, 0)])


def test_csv_renders_values_as_ndjson_does_and_nulls_as_empty() -> None:
    text = csv_text(Page(chunks=[TABLE.slice(0, 2)], next_cursor=Cursor()).rows, ["day", "hour_start", "reading"])
    assert text.decode().split("\r\n") == [
        "day,hour_start,reading",
        "2026-11-20,2026-11-20T08:00:00+00:00,1.5",
        "2026-11-21,2026-11-20T08:00:00.123456+00:00,",
        "",
    ]
