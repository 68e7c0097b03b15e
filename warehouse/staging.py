"""DuckDB staging and quarantine: idempotent per batch.

A batch is a stream's window; loading it deletes whatever an earlier run of the same
batch left and inserts the new rows in one transaction, so a re-run replaces and never
duplicates. Only one process may hold the DuckDB file (NOTES.md): callers run under the
Airflow pool of one slot and close the connection as soon as they are done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from kernel.private import private_dir, private_file
from schemas.contract import Contract

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS quarantine (
    stream VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    record JSON NOT NULL,          -- the rejected row, de-identified
    quarantined_at TIMESTAMPTZ NOT NULL
)
"""


# Warehouses a caller of this process keeps open across several stages (`held_warehouse`).
_HELD: dict[Path, duckdb.DuckDBPyConnection] = {}


@contextmanager
def held_warehouse(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Keep the warehouse open for every stage run inside the block, then close it.

    Opening a DuckDB database costs ~20 ms of CPU and closing it ~10 ms (bench window_costs),
    whatever the work: a small window's load, marts and publish would pay it three times. The
    block is the one writer's turn (one process per community at a time, as the Airflow pool
    ensures); the lock is released when it ends, as `warehouse` releases it."""
    path = path.resolve()
    if path in _HELD:  # nested: the outer block keeps it
        yield _HELD[path]
        return
    with warehouse(path) as con:
        _HELD[path] = con
        try:
            yield con
        finally:
            del _HELD[path]


@contextmanager
def warehouse(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """An open warehouse connection, closed on exit so the file lock is released (unless a
    `held_warehouse` block of this process holds it: that block closes it)."""
    held = _HELD.get(path.resolve())
    if held is not None:
        yield held
        return
    # DuckDB refuses an empty file, so it cannot be pre-created 0600: the folder is made 0700
    # first (nobody else can reach the file while it exists with DuckDB's default mode).
    private_dir(path.parent)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        if not read_only:
            private_file(path)
            private_file(path.with_name(path.name + ".wal"))
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def staging_table(contract: Contract) -> str:
    return f"stg_{contract.name}"


def load_batch(
    con: duckdb.DuckDBPyConnection, contract: Contract, batch_id: str, staged: pa.Table, quarantined: pa.Table
) -> None:
    """Replace one batch's staging and quarantine rows, atomically."""
    table = staging_table(contract)
    con.execute(QUARANTINE_DDL)
    con.register("staged_batch", staged)
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM staged_batch LIMIT 0")
    # A consumer registered later brings its per-consumer staging columns (e.g. sealed plates):
    # earlier batches have none, so those columns are added, empty, rather than refused.
    have = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()
    }
    for name in staged.column_names:
        if name not in have:
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" VARCHAR')
    quarantine_rows = _quarantine_rows(contract, batch_id, quarantined)
    con.register("quarantined_batch", quarantine_rows)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {table} WHERE _batch_id = ?", [batch_id])
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM staged_batch")
        con.execute("DELETE FROM quarantine WHERE stream = ? AND batch_id = ?", [contract.name, batch_id])
        con.execute(
            "INSERT INTO quarantine SELECT stream, batch_id, reason, record::JSON, now() FROM quarantined_batch"
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("staged_batch")
        con.unregister("quarantined_batch")


def _quarantine_rows(contract: Contract, batch_id: str, quarantined: pa.Table) -> pa.Table:
    import json

    reasons = quarantined.column("_reason").to_pylist() if quarantined.num_rows else []
    body = quarantined.drop_columns(["_reason"]) if quarantined.num_rows else quarantined
    records = [json.dumps(r, ensure_ascii=False, sort_keys=True, default=str) for r in body.to_pylist()]
    n = len(records)
    return pa.table(
        {
            "stream": pa.array([contract.name] * n, pa.string()),
            "batch_id": pa.array([batch_id] * n, pa.string()),
            "reason": pa.array(reasons, pa.string()),
            "record": pa.array(records, pa.string()),
        }
    )
