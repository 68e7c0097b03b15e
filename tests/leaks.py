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


def jws_payloads(text: str) -> list[str]:
    """The decoded payloads of every compact JWS in `text` (base64url hides what they carry)."""
    import base64
    import re

    payloads = []
    for match in re.finditer(r"eyJ[A-Za-z0-9_-]*\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+", text):
        body = match.group(1)
        try:
            payloads.append(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8", "ignore"))
        except ValueError:
            continue
    return payloads


def texts_of_messages(messages: Iterable[bytes | str], where: str = "relay") -> Iterable[tuple[str, str]]:
    """Relay (MQTT) messages as scannable texts: the raw payload and every JWS payload inside it.

    For the relay's leak tests: `find_leaks(identifiers, texts_of_messages(received))`.
    """
    for i, message in enumerate(messages):
        text = message.decode("utf-8", "ignore") if isinstance(message, bytes) else message
        yield f"{where}[{i}]", text
        for payload in jws_payloads(text):
            yield f"{where}[{i}] (signed payload)", payload


def texts_of_consumer_lake(lake: Path, consumer: str) -> Iterable[tuple[str, str]]:
    """What one consumer is given in the lake: its partitions' values and its manifests' payloads."""
    for where, text in texts_of_lake(lake / consumer):
        yield where, text
        if where.endswith(".jws"):
            for payload in jws_payloads(text):
                yield f"{where} (signed payload)", payload
