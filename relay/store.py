"""The relay's durable state in the control database: one transaction per group commit.

Written by one thread only (the relay's worker), so SQLite's single writer never waits on
the relay itself; the publishers only read the outbox, in `seq` order per destination.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, delete, func, or_, select
from sqlalchemy.engine import Engine

from relay.lifecycle import Alarm
from warehouse.control import engine_for
from warehouse.models import AlarmLifecycleEvent, InboundSeen, OutboxMessage, RelayAlarm, SealedValue, UTCDateTime

# Core tables, not the ORM: executemany without per-row ORM bookkeeping (the hot path).
ALARMS: Table = RelayAlarm.__table__  # type: ignore[assignment]
EVENTS: Table = AlarmLifecycleEvent.__table__  # type: ignore[assignment]
OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
SEEN: Table = InboundSeen.__table__  # type: ignore[assignment]
SEALED: Table = SealedValue.__table__  # type: ignore[assignment]
_ALARM_COLUMNS = [c.name for c in ALARMS.columns]


def _utc(at: datetime | None) -> datetime | None:
    """A timestamp as `UTCDateTime` binds it (drivers with a timestamp type: aware, in UTC)."""
    if at is None:
        return None
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the control database")
    return at.astimezone(UTC)


@lru_cache(maxsize=8192)
def _sqlite_timestamp(at: datetime | None) -> str | None:
    """A timestamp as SQLAlchemy's SQLite DATETIME stores `UTCDateTime` (UTC, no offset), so reads agree.

    Cached: an alarm's row repeats its event's moments, and a group commit's rows share the
    moment it was taken, so most conversions are repeats (a dozen timestamps per alarm)."""
    at = _utc(at)
    return None if at is None else at.replace(tzinfo=None).isoformat(" ", "microseconds")


# The WAL size past which the relay's checkpointer truncates it (a few seconds of a burst).
WAL_LIMIT_BYTES = 64 * 1024 * 1024
_PG_NEXT_SEQS = "SELECT nextval(pg_get_serial_sequence('relay_outbox', 'seq')) FROM generate_series(1, %s)"
_OUTBOX_COLUMNS = ("destination", "topic", "payload", "alarm_id", "created_at")
_TIMESTAMPS = frozenset(c.name for t in (ALARMS, EVENTS) for c in t.columns if isinstance(c.type, UTCDateTime))


class _Statements:
    """The hot path's SQL, in the driver's parameter style."""

    def __init__(self, paramstyle: str, dialect: str) -> None:
        mark = "?" if paramstyle == "qmark" else "%s"

        def marks(n: int) -> str:
            return ", ".join([mark] * n)

        seen_conflict = " ON CONFLICT (msg_key) DO NOTHING" if dialect in ("sqlite", "postgresql") else ""
        self.insert_seen = f"INSERT INTO {SEEN.name} (msg_key, seen_at) VALUES ({marks(2)}){seen_conflict}"
        sealed_conflict = " ON CONFLICT (lookup) DO NOTHING" if dialect in ("sqlite", "postgresql") else ""
        self.insert_sealed = f"INSERT INTO {SEALED.name} (lookup, key_id, sealed) VALUES ({marks(3)}){sealed_conflict}"
        self.alarm_columns = tuple(_ALARM_COLUMNS)  # alarm_id first (asserted below)
        self.insert_alarm = (
            f"INSERT INTO {ALARMS.name} ({', '.join(self.alarm_columns)}) VALUES ({marks(len(self.alarm_columns))})"
        )
        sets = ", ".join(f"{c} = {mark}" for c in self.alarm_columns[1:])
        self.update_alarm = f"UPDATE {ALARMS.name} SET {sets} WHERE alarm_id = {mark}"
        self.event_columns = tuple(c.name for c in EVENTS.columns)
        self.insert_event = (
            f"INSERT INTO {EVENTS.name} ({', '.join(self.event_columns)}) VALUES ({marks(len(self.event_columns))})"
        )
        self.insert_outbox = f"INSERT INTO {OUTBOX.name} ({', '.join(_OUTBOX_COLUMNS)}) VALUES ({marks(5)})"
        self.insert_outbox_seq = f"INSERT INTO {OUTBOX.name} (seq, {', '.join(_OUTBOX_COLUMNS)}) VALUES ({marks(6)})"
        self.delete_outbox = f"DELETE FROM {OUTBOX.name} WHERE seq = {mark}"
        assert self.alarm_columns[0] == "alarm_id"

    def alarm_values(self, row: dict[str, Any], ts: Any) -> tuple[Any, ...]:
        return tuple(ts(row[c]) if c in _TIMESTAMPS else row[c] for c in self.alarm_columns)

    def event_values(self, row: dict[str, Any], ts: Any) -> tuple[Any, ...]:
        return tuple(ts(row[c]) if c in _TIMESTAMPS else row[c] for c in self.event_columns)

    @staticmethod
    def outbox_values(row: dict[str, Any], ts: Any) -> tuple[Any, ...]:
        return (row["destination"], row["topic"], row["payload"], row["alarm_id"], ts(row["created_at"]))


@dataclass
class Commit:
    """Everything one group commit writes."""

    seen: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    new_alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed_alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    published: list[int] = field(default_factory=list)  # outbox rows their broker acknowledged
    sealed: list[tuple[str, str, str]] = field(default_factory=list)  # newly sealed (lookup, key id, value)

    def alarm(self, alarm: Alarm, is_new: bool) -> None:
        row = alarm.row()
        if is_new or alarm.alarm_id in self.new_alarms:
            self.new_alarms[alarm.alarm_id] = row
        else:
            self.changed_alarms[alarm.alarm_id] = row

    def __bool__(self) -> bool:
        return bool(self.seen or self.events or self.outbox or self.published or self.changed_alarms or self.sealed)

    @classmethod
    def merged(cls, commits: list[Commit]) -> Commit:
        """Consecutive group commits as one: rows in order, each alarm's latest row (inserted if
        any of them created it)."""
        if len(commits) == 1:
            return commits[0]
        out = cls()
        for c in commits:
            out.seen += c.seen
            out.events += c.events
            out.outbox += c.outbox
            out.published += c.published
            out.sealed += c.sealed
            out.new_alarms.update(c.new_alarms)
            for alarm_id, row in c.changed_alarms.items():
                target = out.new_alarms if alarm_id in out.new_alarms else out.changed_alarms
                target[alarm_id] = row
        return out


@dataclass(frozen=True)
class Pending:
    """An outbox row as a publisher sends it."""

    seq: int
    topic: str
    payload: str
    created_at: datetime


class _SqliteWriter:
    """The committer's own connection to a SQLite control database, and a lock file for writers.

    A group commit through SQLAlchemy's pool and transaction events cost ~150 µs before any
    row was written, a large share of a commit of two or three alarms. And relay shards (one
    process each) writing the same file would otherwise meet SQLite's busy handler, which
    polls for the write lock with sleeps of up to 100 ms; the lock file (as the API's audit
    writers do) queues them instead, each woken the moment the other commits.
    """

    def __init__(self, path: str, synchronous: str, wal_limit_bytes: int) -> None:
        self.path = path
        self.wal_limit = wal_limit_bytes
        self.rewinds = 0  # checkpoints that left the WAL ready to rewind (or truncated it)
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        # No automatic checkpoint inside a group commit: the commit that crosses SQLite's threshold
        # (1,000 WAL pages, every ~70 commits here) would copy those pages into the database and
        # fsync it before the alarms it carries are acknowledged or published. `checkpoint` does
        # that work on its own connection, off the relay's path (a PASSIVE checkpoint does not
        # block the writer).
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON", "wal_autocheckpoint=0"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute(f"PRAGMA synchronous={'NORMAL' if synchronous == 'normal' else 'FULL'}")
        # A WAL that SQLite resets (after a complete checkpoint) is cut back to this size.
        self.conn.execute(f"PRAGMA journal_size_limit={int(wal_limit_bytes)}")
        self._lock = os.open(f"{path}.relay-lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._checkpointer: sqlite3.Connection | None = None

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database (from the relay's checkpointer thread), and
        keep the WAL file near `wal_limit` (issue 17, D4).

        PASSIVE alone never bounds the WAL under load: SQLite rewinds a WAL (and cuts the file back
        to `journal_size_limit`) only when a write starts after a checkpoint has copied every frame
        and no reader still uses one, and with a commit every few milliseconds that moment never
        came (887 MB after 110 s at 300 alarms/s). So, once the file has passed the limit, a RESTART
        checkpoint under the writers' lock file: the PASSIVE one just before (unlocked) has copied
        nearly everything, so the committer queues on the lock file only while the frames written
        in between are copied and the readers' queries end; its next commit rewinds the WAL, which
        keeps its `journal_size_limit` bytes allocated (a TRUNCATE to zero made every commit after
        it grow the file, with a metadata fsync each: p50 2.4 -> 7.7 ms in bench relay_wal). The
        checkpointer waits at most 50 ms for readers (busy: the next round tries again); past four
        times the limit, TRUNCATE. The committer never meets SQLite's busy handler (whose sleeps
        grow to 100 ms) on the checkpoint's account.
        """
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self.path, timeout=0.05, isolation_level=None, check_same_thread=False)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        size = self.wal_bytes()
        if size <= self.wal_limit:
            return
        mode = "TRUNCATE" if size > 4 * self.wal_limit else "RESTART"
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            # fetchall: a statement left unfinished holds a read mark, and that alone defers the rewind.
            ((busy, log, done),) = self._checkpointer.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
        if not busy and log == done:
            self.rewinds += 1

    def wal_bytes(self) -> int:
        try:
            return os.path.getsize(f"{self.path}-wal")
        except FileNotFoundError:
            return 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            cur = self.conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            finally:
                cur.close()
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)


class RelayStore:
    """Reads and writes of the relay's tables."""

    def __init__(self, url: str, sqlite_synchronous: str = "full", wal_limit_bytes: int = WAL_LIMIT_BYTES) -> None:
        # Reads, start-up and pruning; the group commits (and their fsync policy) go through the
        # committer's own connection on SQLite (`_SqliteWriter`).
        self.engine: Engine = engine_for(url)
        # A msg_id seen again after it left the in-memory window (a very late resend) must not
        # fail the whole group commit: the row is already there (ON CONFLICT DO NOTHING).
        dialect = self.engine.dialect.name
        self._dialect = dialect
        self._sql = _Statements(self.engine.dialect.paramstyle, dialect)
        self._timestamp = _sqlite_timestamp if dialect == "sqlite" else _utc
        sqlite_path = url.removeprefix("sqlite:///")
        self._writer = _SqliteWriter(sqlite_path, sqlite_synchronous, wal_limit_bytes) if dialect == "sqlite" else None

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A write transaction and a cursor of the driver's own (no per-row SQLAlchemy work)."""
        if self._writer is not None:
            with self._writer.transaction() as cur:
                yield cur
            return
        with self.engine.begin() as conn:
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                yield cur
            finally:
                cur.close()

    def write(self, commit: Commit) -> list[tuple[str, Pending]]:
        """Write one group commit atomically; returns its outbox rows (destination, row) in order.

        Prepared statements executed many times on the driver's own cursor: SQLAlchemy's
        per-row compilation and bind processing cost more than the rows' fsync at a thousand
        alarms a second. Timestamps are bound as each dialect stores `UTCDateTime`.
        """
        sql, ts = self._sql, self._timestamp
        written: list[tuple[str, Pending]] = []
        with self._transaction() as cur:
            if commit.sealed:
                cur.executemany(sql.insert_sealed, commit.sealed)
            if commit.seen:
                cur.executemany(sql.insert_seen, [(r["msg_key"], ts(r["seen_at"])) for r in commit.seen])
            if commit.new_alarms:
                cur.executemany(sql.insert_alarm, [sql.alarm_values(r, ts) for r in commit.new_alarms.values()])
            if commit.changed_alarms:
                rows = [(*sql.alarm_values(r, ts)[1:], r["alarm_id"]) for r in commit.changed_alarms.values()]
                cur.executemany(sql.update_alarm, rows)
            if commit.events:
                cur.executemany(sql.insert_event, [sql.event_values(r, ts) for r in commit.events])
            if commit.outbox:
                seqs = self._insert_outbox(cur, commit.outbox)
                written = [
                    (row["destination"], Pending(seq, row["topic"], row["payload"], row["created_at"]))
                    for seq, row in zip(seqs, commit.outbox, strict=True)
                ]
            if commit.published:
                cur.executemany(sql.delete_outbox, [(seq,) for seq in commit.published])
        return written

    def _insert_outbox(self, cur: Any, rows: list[dict[str, Any]]) -> list[int]:
        """Insert outbox rows in order; their seqs, ascending in row order."""
        ts, values = self._timestamp, self._sql.outbox_values
        if self._dialect == "postgresql":
            # One round trip for the numbers, one executemany for the rows: only the relay writes the
            # outbox (one committer thread), so seqs still grow in commit order for the publishers.
            cur.execute(_PG_NEXT_SEQS, (len(rows),))
            seqs = sorted(int(r[0]) for r in cur.fetchall())
            numbered = [(seq, *values(r, ts)) for seq, r in zip(seqs, rows, strict=True)]
            cur.executemany(self._sql.insert_outbox_seq, numbered)
            return seqs
        if self._dialect != "sqlite":
            seqs = []
            for row in rows:  # a cached prepared statement each; lastrowid is the AUTOINCREMENT seq
                cur.execute(self._sql.insert_outbox, values(row, ts))
                seqs.append(int(cur.lastrowid))
            return seqs
        # SQLite: one executemany. The writer holds the write lock (BEGIN IMMEDIATE), so the rows'
        # AUTOINCREMENT seqs are consecutive and end at last_insert_rowid().
        cur.executemany(self._sql.insert_outbox, [values(r, ts) for r in rows])
        last = int(cur.execute("SELECT last_insert_rowid()").fetchone()[0])
        return list(range(last - len(rows) + 1, last + 1))

    def checkpoint(self) -> None:
        """SQLite: move the WAL into the database now (the relay's writer never does it mid-commit)."""
        if self._writer is not None:
            self._writer.checkpoint()

    def pending(self, destination: str, after: int, limit: int) -> list[Pending]:
        """The destination's unsent rows after `after`, oldest first."""
        query = (
            select(OutboxMessage.seq, OutboxMessage.topic, OutboxMessage.payload, OutboxMessage.created_at)
            .where(OutboxMessage.destination == destination, OutboxMessage.seq > after)
            .order_by(OutboxMessage.seq)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [Pending(*row) for row in conn.execute(query)]

    def depth(self, destinations: list[str] | None = None) -> int:
        """Outbox rows not yet acknowledged by their broker (for these destinations; None: all)."""
        query = select(func.count()).select_from(OutboxMessage)
        if destinations is not None:
            query = query.where(OutboxMessage.destination.in_(destinations))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def depth_by_destination(self) -> dict[str, int]:
        query = select(OutboxMessage.destination, func.count()).group_by(OutboxMessage.destination)
        with self.engine.connect() as conn:
            return {str(d): int(n) for d, n in conn.execute(query)}

    def open_alarms(self, now: datetime, flap_window: timedelta) -> list[Alarm]:
        """Alarms not cleared, or cleared within the flap window: the lifecycle's working set."""
        query = select(*RelayAlarm.__table__.columns).where(
            or_(RelayAlarm.cleared_at.is_(None), RelayAlarm.cleared_at >= now - flap_window)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        alarms = []
        for row in rows:
            values = {k: row[k] for k in _ALARM_COLUMNS}
            values["sealed"] = json.loads(values["sealed"]) if values["sealed"] else {}
            alarms.append(Alarm(**values))
        return alarms

    def sealed_values(self, key_ids: list[str]) -> dict[str, str]:
        """The values already sealed to these recipient keys, by lookup."""
        if not key_ids:
            return {}
        query = select(SealedValue.lookup, SealedValue.sealed).where(SealedValue.key_id.in_(key_ids))
        with self.engine.connect() as conn:
            return {str(lookup): str(sealed) for lookup, sealed in conn.execute(query)}

    def seen_since(self, since: datetime) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(InboundSeen.msg_key).where(InboundSeen.seen_at >= since)).scalars())

    def prune_seen(self, before: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(InboundSeen).where(InboundSeen.seen_at < before))
