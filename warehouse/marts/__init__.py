"""SQL models that build the curated tables behind the feeds, run in dependency order."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
_REQUIRES = re.compile(r"^--\s*requires:\s*(.+)$", re.MULTILINE)


def mart_files() -> list[Path]:
    """The models, in the order they run (their file names sort in dependency order)."""
    return sorted(HERE.glob("*.sql"))


def build_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Rebuild every mart whose input tables exist; returns the models that ran.

    A model names its inputs in a `-- requires: a, b` comment; a model whose source has
    never been loaded is skipped rather than failed, so a hub can run with some systems
    not yet connected.
    """
    existing = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    ran = []
    for path in mart_files():
        sql = path.read_text(encoding="utf-8")
        match = _REQUIRES.search(sql)
        requires = {t.strip() for t in match.group(1).split(",")} if match else set()
        if requires <= existing:
            con.execute(sql)
            existing.update(re.findall(r"CREATE OR REPLACE TABLE (\w+)", sql))
            ran.append(path.stem)
    return ran
