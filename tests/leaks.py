"""Scanning what the hub wrote for identifiers it was fed: the privacy tests' instrument."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow.parquet as pq


def texts_of_lake(lake: Path) -> Iterable[tuple[str, str]]:
    """Every lake file as raw bytes (decoded leniently) and, for Parquet, its decoded values."""
    for path in sorted(lake.rglob("*")):
        if path.is_file():
            yield str(path), path.read_bytes().decode("utf-8", errors="ignore")
            if path.suffix == ".parquet":
                yield f"{path} (values)", str(pq.read_table(path).to_pylist())


def texts_of_warehouse(path: Path) -> Iterable[tuple[str, str]]:
    """Every table of the DuckDB file, every value as text, plus the file's raw bytes."""
    yield str(path), path.read_bytes().decode("utf-8", errors="ignore")
    con = duckdb.connect(str(path), read_only=True)
    try:
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            yield f"duckdb:{table}", str(con.sql(f"SELECT * FROM {table}").to_arrow_table().to_pylist())
    finally:
        con.close()


def find_leaks(identifiers: Iterable[str], texts: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(where, identifier) for every identifier found in any text."""
    wanted = [i for i in set(identifiers) if len(i) >= 5]
    leaks = []
    for where, text in texts:
        leaks += [(where, i) for i in wanted if i in text]
    return leaks
