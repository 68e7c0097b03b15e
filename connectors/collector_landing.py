"""Landed micro-batches: how the collector writes them durably and how streams read a window.

Layout: `<root>/<stream>/<window>/<batch>.parquet.enc`, one window per UTC hour of the
receive time. A batch file appears whole or not at all (written to a hidden temporary
file, fsynced, renamed, directory fsynced), so a reader never sees a torn batch and a
killed collector leaves at most a temporary file that no reader looks at.

Parquet rather than JSON lines: a batch is written once and read by hourly windows, so
the fixed cost of a Parquet file is paid per batch (about a millisecond), while reads get
the receive-time filter and sorting in Arrow, and the payloads stay byte-exact in a
binary column. Payloads carry raw identifiers (households, residents, tags), which the
hub keeps only encrypted: each file is AES-256-GCM sealed under a key derived from the
master secret, with its path as associated data (a file cannot stand in for another),
and windows are deleted after `retention`, like the raw vault.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kernel.errors import IntegrityError

LANDED_SCHEMA = pa.schema(
    [
        pa.field("msg_id", pa.string(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("payload", pa.binary(), nullable=False),
        pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("problem", pa.string()),  # why the payload is unreadable, None when it is fine
    ]
)
WINDOW_FORMAT = "%Y-%m-%dT%H"
SUFFIX = ".parquet.enc"
MAGIC = b"NEURONLANDING1\n"

# (stream, msg_id, topic, payload, received_at in µs since the epoch, problem)
LandedRow = tuple[str, str, str, bytes, int, str | None]


class KeySource(Protocol):
    """What landing needs of the hub's keys (privacy.keys.HubKeys)."""

    master_version: int

    def derive(self, purpose: str, *context: str, version: int | None = None) -> bytes: ...


def window_of(received_us: int) -> str:
    """The name of the hourly window a receive time falls in."""
    return datetime.fromtimestamp(received_us // 1_000_000, UTC).strftime(WINDOW_FORMAT)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_dir(path: Path) -> None:
    if path.is_dir():
        return
    _ensure_dir(path.parent)
    path.mkdir(exist_ok=True, mode=0o700)
    _fsync_dir(path.parent)  # the new directory entry itself must survive a power cut


def _aad(root: Path, path: Path) -> bytes:
    return str(path.relative_to(root)).encode()


def _seal(keys: KeySource, root: Path, path: Path, table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", compression_level=1)
    nonce = os.urandom(12)
    key = keys.derive("landing", version=keys.master_version)
    sealed = AESGCM(key).encrypt(nonce, sink.getvalue().to_pybytes(), _aad(root, path))
    return MAGIC + struct.pack(">I", keys.master_version) + nonce + sealed


def read_file(keys: KeySource, root: Path, path: Path) -> pa.Table:
    """Decrypt and read one landed file; IntegrityError if it was altered or moved."""
    blob = path.read_bytes()
    where = path.relative_to(root)
    if not blob.startswith(MAGIC):
        raise IntegrityError(f"landed file {where}: not a landing file")
    head = len(MAGIC)
    (version,) = struct.unpack(">I", blob[head : head + 4])
    nonce, sealed = blob[head + 4 : head + 16], blob[head + 16 :]
    try:
        plain = AESGCM(keys.derive("landing", version=version)).decrypt(nonce, sealed, _aad(root, path))
    except InvalidTag:
        raise IntegrityError(f"landed file {where}: does not decrypt (altered, or moved from another path)") from None
    return pq.read_table(pa.BufferReader(plain), schema=LANDED_SCHEMA)


def land(keys: KeySource, root: Path, rows: Sequence[LandedRow], batch_name: str) -> list[Path]:
    """Write rows as one durable, encrypted file per (stream, window); returns the files written."""
    groups: dict[tuple[str, str], list[LandedRow]] = defaultdict(list)
    for row in rows:
        groups[(row[0], window_of(row[4]))].append(row)
    written = []
    for (stream, window), group in groups.items():
        folder = root / stream / window
        _ensure_dir(folder)
        _, msg_ids, topics, payloads, received, problems = zip(*group, strict=True)
        table = pa.Table.from_arrays(
            [
                pa.array(msg_ids, pa.string()),
                pa.array(topics, pa.string()),
                pa.array(payloads, pa.binary()),
                pa.array(received, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                pa.array(problems, pa.string()),
            ],
            schema=LANDED_SCHEMA,
        )
        path = folder / f"{batch_name}{SUFFIX}"
        tmp = folder / f".{batch_name}.tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
            fh.write(_seal(keys, root, path, table))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        written.append(path)
    for folder in {p.parent for p in written}:
        _fsync_dir(folder)  # the renames are durable only once their directory is
    return written


def _windows(since: datetime, until: datetime) -> Iterable[str]:
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour < until:
        yield hour.strftime(WINDOW_FORMAT)
        hour += timedelta(hours=1)


def read_window(keys: KeySource, root: Path, stream: str, since: datetime, until: datetime) -> pa.Table:
    """Every landed message of `stream` received in [since, until), by receive time then msg_id."""
    tables = [
        read_file(keys, root, path)
        for window in _windows(since, until)
        for path in sorted((root / stream / window).glob(f"*{SUFFIX}"))
    ]
    if not tables:
        return LANDED_SCHEMA.empty_table()
    table = pa.concat_tables(tables)
    received = table.column("received_at")
    start = pa.scalar(since, pa.timestamp("us", tz="UTC"))
    end = pa.scalar(until, pa.timestamp("us", tz="UTC"))
    table = table.filter(pc.and_(pc.greater_equal(received, start), pc.less(received, end)))
    return table.sort_by([("received_at", "ascending"), ("msg_id", "ascending")])


def _window_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(w for s in root.iterdir() if s.is_dir() for w in s.iterdir() if w.is_dir())


def remove_partial_files(root: Path) -> int:
    """Delete temporary files a killed collector left (their messages were never acknowledged)."""
    partial = [p for folder in _window_folders(root)[-64:] for p in folder.glob(".*.tmp")]
    for path in partial:
        path.unlink(missing_ok=True)
    return len(partial)


def prune_windows(root: Path, retention: timedelta, now: datetime | None = None) -> int:
    """Delete the windows that ended more than `retention` ago; returns how many."""
    cutoff = (now or datetime.now(UTC)) - retention - timedelta(hours=1)  # a window's name is its start
    start = {w: datetime.strptime(w.name, WINDOW_FORMAT).replace(tzinfo=UTC) for w in _window_folders(root)}
    expired = [w for w, began in start.items() if began < cutoff]
    for folder in expired:
        shutil.rmtree(folder, ignore_errors=True)
    return len(expired)


def recent_msg_ids(keys: KeySource, root: Path, lookback_seconds: float) -> set[str]:
    """The msg_ids of the files landed within `lookback_seconds` of the newest landed file."""
    by_stream: dict[Path, list[Path]] = defaultdict(list)
    for folder in _window_folders(root):
        by_stream[folder.parent].append(folder)
    files = [p for folders in by_stream.values() for f in folders[-2:] for p in f.glob(f"*{SUFFIX}")]
    if not files:
        return set()
    mtimes = {p: p.stat().st_mtime for p in files}
    newest = max(mtimes.values())
    found: set[str] = set()
    for path, mtime in mtimes.items():
        if mtime >= newest - lookback_seconds:
            found.update(read_file(keys, root, path).column("msg_id").to_pylist())
    return found
