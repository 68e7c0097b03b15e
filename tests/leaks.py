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


def grep_leaks(
    forms: Iterable[bytes],
    texts: Iterable[tuple[str, str | bytes]],
    scratch: Path,
    whole_word_forms: Iterable[bytes] = (),
) -> list[tuple[str, str]]:
    """(where, form found) for every form of an identifier in any text, by `grep -F` (Aho-Corasick
    over every form at once: tens of thousands of forms over megabytes take a second, where
    `find_leaks`'s one substring search per identifier and text would take minutes).

    `whole_word_forms` count only where no letter, digit or underscore touches them: the
    lower-case copy of an 8-hex-digit card number turns up by chance about once a run inside
    the megabytes of hex digests (pseudonyms, hashes) a hub writes, and is no leak there."""
    import subprocess

    scratch.mkdir(parents=True, exist_ok=True)
    folder = scratch / "texts"
    folder.mkdir(exist_ok=True)
    names: dict[str, str] = {}
    for n, (where, text) in enumerate(texts):
        names[f"{n:06d}"] = where
        (folder / f"{n:06d}").write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    leaks = []
    for kind, patterns, options in (("forms", forms, "-rFaoH"), ("words", whole_word_forms, "-rFwaoH")):
        chosen = sorted(set(patterns))
        if not chosen:
            continue
        path = scratch / f"{kind}.txt"
        path.write_bytes(b"\n".join(chosen) + b"\n")
        done = subprocess.run(["grep", options, "-f", str(path), str(folder)], capture_output=True, env={"LC_ALL": "C"})
        if done.returncode not in (0, 1):  # 1: nothing found
            raise RuntimeError(done.stderr.decode(errors="replace"))
        for line in done.stdout.splitlines():
            file, _, found = line.partition(b":")
            leaks.append((names[Path(file.decode()).name], found.decode("utf-8", "replace")))
    return sorted(set(leaks))
