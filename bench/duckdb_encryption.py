"""DuckDB's built-in database encryption (ATTACH … (ENCRYPTION_KEY …), AES-GCM) for the
staging warehouse, against the same work on a plain database file (the floor).

The work is what staging does: load batches of a staging-shaped table (strings, pseudonym
tokens, timestamps, ints) in transactions of one batch, then the marts' kind of query
(group by day and building over the whole table), then reopen and scan. Each variant runs
REPEAT times, the median kept. Issue 16 asks to adopt encryption if it costs under 20%.

DuckDB writes encrypted files securely only with OpenSSL from its `httpfs` extension; without
it, it refuses to write unless `force_mbedtls_unsafe` is set, and says the result is "NOT
securely encrypted". The bench uses httpfs when it loads and otherwise measures the mbedtls
path and says so (its cost is an estimate of the AES-GCM work, not an adoptable setup).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

ROWS_PER_BATCH = 100_000
BATCHES = 8
REPEAT = 3
KEY = "bench-only-key-0123456789abcdef0123456789abcdef"  # a bench key; the hub would derive one


def _batch(n: int, offset: int) -> pa.Table:
    ids = range(offset, offset + n)
    return pa.table(
        {
            "record_id": [f"R{i:09d}" for i in ids],
            "token": [f"tok_{(i * 2654435761) % 10**12:012d}" for i in ids],
            "building": [str(i % 40) for i in ids],
            "event_time": pa.array([1_764_000_000_000_000 + i * 1_000_000 for i in ids], pa.timestamp("us", tz="UTC")),
            "amount": [i % 5000 for i in ids],
        }
    )


def crypto_module() -> str:
    """Which crypto DuckDB will use for encrypted writes in this installation."""
    try:
        duckdb.connect().execute("LOAD httpfs")
        return "openssl (httpfs)"
    except duckdb.Error:
        return "mbedtls (unsafe: httpfs not installed, no network to install it)"


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    try:
        con.execute("LOAD httpfs")
    except duckdb.Error:
        con.execute("SET force_mbedtls_unsafe = 'true'")
    return con


def _work(folder: Path, encrypted: bool) -> dict[str, float]:
    path = folder / ("enc.duckdb" if encrypted else "plain.duckdb")
    path.unlink(missing_ok=True)
    options = f" (ENCRYPTION_KEY '{KEY}')" if encrypted else ""
    batches = [_batch(ROWS_PER_BATCH, b * ROWS_PER_BATCH) for b in range(BATCHES)]
    con = _connect()
    started = time.perf_counter()
    con.execute(f"ATTACH '{path}' AS wh{options}")
    for i, table in enumerate(batches):
        con.register("batch", table)
        con.execute("BEGIN")
        if i == 0:
            con.execute("CREATE TABLE wh.stg AS SELECT * FROM batch")
        else:
            con.execute("INSERT INTO wh.stg SELECT * FROM batch")
        con.execute("COMMIT")
        con.unregister("batch")
    con.execute("CHECKPOINT wh")
    load = time.perf_counter() - started
    started = time.perf_counter()
    con.execute(
        "SELECT date_trunc('day', event_time) d, building, count(*), sum(amount), count(DISTINCT token) "
        "FROM wh.stg GROUP BY ALL"
    ).fetchall()
    query = time.perf_counter() - started
    con.close()
    started = time.perf_counter()
    con = _connect()
    con.execute(f"ATTACH '{path}' AS wh (READ_ONLY{',' + options.strip(' ()') if encrypted else ''})")
    con.execute("SELECT sum(length(token)), max(record_id) FROM wh.stg").fetchall()
    scan = time.perf_counter() - started
    con.close()
    return {"load": load, "query": query, "reopen_scan": scan, "bytes": float(path.stat().st_size)}


def run() -> dict[str, Any]:
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for encrypted in (False, True) * REPEAT:
            got = _work(Path(tmp), encrypted)
            name = "encrypted" if encrypted else "plain"
            for key, value in got.items():
                results.setdefault(f"{name}.{key}", []).append(value)
    medians = {k: statistics.median(v) for k, v in results.items()}
    total = {n: sum(medians[f"{n}.{s}"] for s in ("load", "query", "reopen_scan")) for n in ("plain", "encrypted")}
    overhead = total["encrypted"] / total["plain"] - 1
    return {"medians": medians, "total": total, "overhead": overhead, "crypto": crypto_module()}


def report(result: dict[str, Any]) -> str:
    m = result["medians"]
    lines = [
        f"DuckDB {duckdb.__version__}; {BATCHES} batches × {ROWS_PER_BATCH:,} staging-shaped rows loaded in one "
        f"transaction each, then a marts-style GROUP BY, then reopen and scan; median of {REPEAT} runs each, "
        f"interleaved. Crypto: {result['crypto']}. `python -m bench duckdb_encryption`.",
        "",
        "| step | plain (floor) | encrypted (AES-GCM) | overhead |",
        "|---|---:|---:|---:|",
    ]
    for step in ("load", "query", "reopen_scan"):
        p, e = m[f"plain.{step}"], m[f"encrypted.{step}"]
        lines.append(f"| {step} | {p:.3f} s | {e:.3f} s | {100 * (e / p - 1):+.0f}% |")
    t = result["total"]
    lines.append(f"| **total** | {t['plain']:.3f} s | {t['encrypted']:.3f} s | **{100 * result['overhead']:+.0f}%** |")
    lines.append(f"| file size | {m['plain.bytes'] / 1e6:.1f} MB | {m['encrypted.bytes'] / 1e6:.1f} MB | |")
    adopt = result["overhead"] < 0.20 and result["crypto"].startswith("openssl")
    lines += [
        "",
        "Decision (issue 16 asks for under 20%): "
        + (
            "adopt."
            if adopt
            else "staging stays a plain DuckDB file: encryption costs more than 20% here, and without httpfs "
            "DuckDB's own writer is not secure. Staging holds pseudonyms only (raw values stay in the vault); "
            "it is protected by 0600/0700 and the disk."
        ),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(report(run()))
