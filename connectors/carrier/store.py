"""The durable inbox: every accepted push is in SQLite (WAL, synchronous=FULL by default, so fsynced
at each commit) before the carrier gets its 200.

Each writer thread takes whatever pushes arrived while it was busy and commits them together (group
commit) into its own file: at 500 pushes/s a fsync per push would cost more than the push. Bodies
are kept AES-256-GCM-encrypted under a key derived from the master secret (they carry IMEIs of
in-home devices), like the MQTT landing.

The processor's state (progress per writer file, message keys seen, device state, readings not yet
landed, alarms not yet published, events) is in a file of its own, so one transaction moves it
together — and never holds a lock a writer needs: a writer waiting on SQLite's busy handler sleeps
1, 2, 5, 10… ms, which was most of the acknowledgement's p99 when they shared one file.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kernel.errors import IntegrityError

log = logging.getLogger(__name__)

# AUTOINCREMENT: ids are never reused once their rows are deleted. The processor's progress is a
# push's seq, and a landed file is named by its rows' ids: a reused id would skip pushes or
# overwrite a landed file.
PUSHES_SCHEMA = """
CREATE TABLE IF NOT EXISTS pushes (seq INTEGER PRIMARY KEY AUTOINCREMENT, received_us INTEGER NOT NULL,
    carrier TEXT NOT NULL, body BLOB NOT NULL);
"""
STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS progress (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seen (key BLOB PRIMARY KEY, at_us INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_state (token TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_rows (id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL,
    received_us INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at_us INTEGER NOT NULL, device TEXT,
    event TEXT NOT NULL, detail TEXT);
CREATE INDEX IF NOT EXISTS events_at ON events (at_us);
CREATE INDEX IF NOT EXISTS seen_at ON seen (at_us);
"""


class KeySource(Protocol):
    master_version: int

    def derive(self, purpose: str, *context: str, version: int | None = None) -> bytes: ...


class Sealer:
    """AES-256-GCM for the inbox's rows: master version (2 bytes) + nonce (12) + ciphertext; the
    table's name is the associated data, so a row cannot be moved to another table."""

    def __init__(self, keys: KeySource) -> None:
        self.keys = keys
        self._aead: dict[int, AESGCM] = {}

    def _for(self, version: int) -> AESGCM:
        aead = self._aead.get(version)
        if aead is None:
            aead = self._aead[version] = AESGCM(self.keys.derive("carrier-inbox", version=version))
        return aead

    def seal(self, table: str, plain: bytes) -> bytes:
        nonce, version = os.urandom(12), self.keys.master_version
        return version.to_bytes(2, "big") + nonce + self._for(version).encrypt(nonce, plain, table.encode())

    def open(self, table: str, blob: bytes) -> bytes:
        version = int.from_bytes(blob[:2], "big")
        try:
            return self._for(version).decrypt(blob[2:14], blob[14:], table.encode())
        except InvalidTag:
            raise IntegrityError(f"carrier inbox: a row of {table} does not decrypt (altered)") from None


def connect(path: Path, synchronous: str = "full") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    # WAL + FULL: the WAL is fsynced at every commit; NORMAL: only at checkpoints.
    conn.execute(f"PRAGMA synchronous={'NORMAL' if synchronous == 'normal' else 'FULL'}")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


Done = Callable[[int | None, BaseException | None], None]


@dataclass
class _Pending:
    carrier: str
    body: bytes
    done: Done
    queued: float  # perf_counter at append


@dataclass(frozen=True)
class InboxFiles:
    """Where an inbox keeps its pushes (one file per writer) and its processor's state."""

    paths: tuple[Path, ...]
    state_path: Path
    synchronous: str

    @classmethod
    def at(cls, path: Path, synchronous: str = "full", writers: int = 2) -> InboxFiles:
        shards = (path, *(path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, writers)))
        return cls(shards, path.with_name(f"{path.stem}-state{path.suffix}"), synchronous)


class InboxStore:
    """Appends pushes durably (group commits on `writers` threads, one SQLite file each) and says up to
    when everything is committed.

    Two writers by default: while one waits for its fsync, pushes that arrive meanwhile are committed
    by the other instead of queueing behind it (on this machine's disk two concurrent committers each
    waited p50 0.5 ms, one alone 3.7 ms: the file system flushes them together)."""

    def __init__(self, path: Path, keys: KeySource, synchronous: str = "full", writers: int = 2) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.files = InboxFiles.at(path, synchronous, writers)
        self.paths, self.state_path = self.files.paths, self.files.state_path
        self.sealer = Sealer(keys)
        self.synchronous = synchronous
        state = connect(self.state_path, synchronous)
        state.executescript(STATE_SCHEMA)
        state.close()
        self._conns = []
        for shard in self.paths:
            conn = connect(shard, synchronous)
            conn.executescript(PUSHES_SCHEMA)
            # Checkpoints are the processor's (PASSIVE, after each landing): one inside a push's group
            # commit would stall the carriers' answers.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conns.append(conn)
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._stamp = threading.Lock()
        self._last_us = 0
        self._inflight: dict[int, int] = {}  # writer → the stamp of the group it is committing
        self._stopping = False
        self.appended = 0
        self.groups = 0
        # Recent timings (ms), for /healthz and the benchmark: fsynced commit, append → durable.
        self.commit_ms: deque[float] = deque(maxlen=50_000)
        self.durable_ms: deque[float] = deque(maxlen=50_000)
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"inbox-writer-{i}", daemon=True) for i in range(writers)
        ]
        for thread in self._threads:
            thread.start()

    def append(self, carrier: str, body: bytes, done: Done) -> None:
        """Queue a push; `done(seq, None)` once it is durable, `done(None, error)` if it cannot be."""
        with self._cond:
            if self._stopping:
                done(None, RuntimeError("the inbox is stopping"))
                return
            self._queue.append(_Pending(carrier, body, done, time.perf_counter()))
            self._cond.notify()

    def safe_through_us(self) -> int:
        """A receive time before which every push is committed: later pushes are stamped at or after it."""
        with self._stamp:
            if self._inflight:
                return min(self._inflight.values())
            self._last_us = max(time.time_ns() // 1000, self._last_us)
            return self._last_us

    def _run(self, writer: int) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                group, self._queue = self._queue, []
            self._commit(writer, group)

    def _commit(self, writer: int, group: list[_Pending]) -> None:
        with self._stamp:
            now = self._last_us = max(time.time_ns() // 1000, self._last_us)
            self._inflight[writer] = now
        seqs: list[int] = []
        error: BaseException | None = None
        started = time.perf_counter()
        try:
            rows = [(now, p.carrier, self.sealer.seal("pushes", p.body)) for p in group]
            with transaction(self._conns[writer]) as conn:
                for row in rows:
                    cur = conn.execute("INSERT INTO pushes (received_us, carrier, body) VALUES (?, ?, ?)", row)
                    seqs.append(int(cur.lastrowid or 0))
        except (sqlite3.Error, OSError) as exc:
            log.error("carrier inbox: could not commit %d pushes (%s); they are refused", len(group), exc)
            error, seqs = exc, []
        finally:
            with self._stamp:
                del self._inflight[writer]
        ended = time.perf_counter()
        with self._stamp:
            self.groups += 1
            self.appended += len(seqs)
            self.commit_ms.append((ended - started) * 1000)
            self.durable_ms.extend((ended - p.queued) * 1000 for p in group)
        for i, p in enumerate(group):
            p.done(seqs[i] if seqs else None, error)

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)
        for conn in self._conns:
            conn.close()


def quantiles(values: deque[float] | list[float]) -> dict[str, float]:
    """p50, p99 and max of some timings (ms), rounded; zeros when there are none."""
    found = sorted(values)
    if not found:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    pick = lambda q: round(found[min(len(found) - 1, int(q * len(found)))], 2)  # noqa: E731
    return {"p50": pick(0.5), "p99": pick(0.99), "max": round(found[-1], 2)}
