"""The relay's durable state in the control database: one transaction per group commit.

Written by one thread only (the relay's worker), so SQLite's single writer never waits on
the relay itself; the publishers only read the outbox, in `seq` order per destination.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, create_engine, delete, event, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from relay.lifecycle import Alarm
from relay.models import AlarmLifecycleEvent, InboundSeen, OutboxMessage, RelayAlarm
from warehouse.control import engine_for

# Core tables, not the ORM: executemany without per-row ORM bookkeeping (the hot path).
ALARMS: Table = RelayAlarm.__table__  # type: ignore[assignment]
EVENTS: Table = AlarmLifecycleEvent.__table__  # type: ignore[assignment]
OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
SEEN: Table = InboundSeen.__table__  # type: ignore[assignment]
_ALARM_COLUMNS = [c.name for c in ALARMS.columns]
_UPDATE_ALARM = (
    ALARMS.update()
    .where(ALARMS.c.alarm_id == bindparam("key"))
    .values({c: bindparam(c) for c in _ALARM_COLUMNS if c != "alarm_id"})
)


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    """The relay's own SQLite engine with a lighter fsync policy (opt-in, see RelaySettings)."""
    if not url.startswith("sqlite:///"):
        return engine_for(url)  # PostgreSQL: durability is the server's synchronous_commit
    engine = create_engine(url, connect_args={"timeout": 30})

    def pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute(f"PRAGMA synchronous={'NORMAL' if synchronous == 'normal' else 'FULL'}")
        cur.close()

    event.listen(engine, "connect", pragmas)
    return engine


@dataclass
class Commit:
    """Everything one group commit writes."""

    seen: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    new_alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed_alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    published: list[int] = field(default_factory=list)  # outbox rows their broker acknowledged

    def alarm(self, alarm: Alarm, is_new: bool) -> None:
        row = alarm.row()
        if is_new or alarm.alarm_id in self.new_alarms:
            self.new_alarms[alarm.alarm_id] = row
        else:
            self.changed_alarms[alarm.alarm_id] = row

    def __bool__(self) -> bool:
        return bool(self.seen or self.events or self.outbox or self.published or self.changed_alarms)


@dataclass(frozen=True)
class Pending:
    """An outbox row as a publisher sends it."""

    seq: int
    topic: str
    payload: str
    created_at: datetime


class RelayStore:
    """Reads and writes of the relay's tables."""

    def __init__(self, url: str, sqlite_synchronous: str = "full") -> None:
        full = sqlite_synchronous == "full"
        self.engine: Engine = engine_for(url) if full else _sqlite_engine(url, sqlite_synchronous)
        # A msg_id seen again after it left the in-memory window (a very late resend) must not
        # fail the whole group commit: the row is already there.
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            self._insert_seen: Any = sqlite_insert(SEEN).on_conflict_do_nothing()
        elif dialect == "postgresql":
            self._insert_seen = postgresql_insert(SEEN).on_conflict_do_nothing()
        else:
            self._insert_seen = SEEN.insert()

    def write(self, commit: Commit) -> list[tuple[str, Pending]]:
        """Write one group commit atomically; returns its outbox rows (destination, row) in order."""
        written: list[tuple[str, Pending]] = []
        with self.engine.begin() as conn:
            if commit.seen:
                conn.execute(self._insert_seen, commit.seen)
            if commit.new_alarms:
                conn.execute(ALARMS.insert(), list(commit.new_alarms.values()))
            if commit.changed_alarms:
                rows = [{**row, "key": row["alarm_id"]} for row in commit.changed_alarms.values()]
                conn.execute(_UPDATE_ALARM, [{k: v for k, v in r.items() if k != "alarm_id"} for r in rows])
            if commit.events:
                conn.execute(EVENTS.insert(), commit.events)
            if commit.outbox:
                # RETURNING in parameter order: the publishers get the rows without reading them back.
                insert = OUTBOX.insert().returning(OUTBOX.c.seq, sort_by_parameter_order=True)
                seqs = conn.execute(insert, commit.outbox).scalars().all()
                written = [
                    (row["destination"], Pending(seq, row["topic"], row["payload"], row["created_at"]))
                    for seq, row in zip(seqs, commit.outbox, strict=True)
                ]
            if commit.published:
                conn.execute(delete(OUTBOX).where(OUTBOX.c.seq.in_(commit.published)))
        return written

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

    def depth(self) -> int:
        """Outbox rows not yet acknowledged by their broker."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(OutboxMessage)).scalar_one())

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
        return [Alarm(**{k: row[k] for k in _ALARM_COLUMNS}) for row in rows]

    def seen_since(self, since: datetime) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(InboundSeen.msg_key).where(InboundSeen.seen_at >= since)).scalars())

    def prune_seen(self, before: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(InboundSeen).where(InboundSeen.seen_at < before))
