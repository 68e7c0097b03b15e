"""The push's state in the control database: feed cursors, the sent-instances ledger, dead
letters, and the relay's outbox rows of Alert entities waiting for this consumer's broker."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, select

from peers.ngsi_ld.batch import DeadLetter
from warehouse.control import engine_for, session_scope
from warehouse.models import NgsiLdCursor, NgsiLdDeadLetter, NgsiLdSentInstance, OutboxMessage

InstanceKey = tuple[str, str, str, str]  # entity id, attribute, datasetId ("" for none), observedAt
LEDGER_CHUNK = 500  # series per IN query
_LEDGER: Table = NgsiLdSentInstance.__table__  # type: ignore[assignment]
_KEY = (
    (_LEDGER.c.consumer == bindparam("c"))
    & (_LEDGER.c.entity_id == bindparam("e"))
    & (_LEDGER.c.attribute == bindparam("a"))
    & (_LEDGER.c.dataset_id == bindparam("d"))
    & (_LEDGER.c.observed_at == bindparam("o"))
)
LEDGER_COLUMNS = ("consumer", "entity_id", "attribute", "dataset_id", "observed_at", "confirmed", "sent_at")
FORGET = delete(_LEDGER).where(_KEY)


@dataclass(frozen=True)
class OutboxAlert:
    """A relay outbox row holding an alarm's state for this consumer's broker."""

    seq: int
    alarm_id: str | None
    row: dict[str, Any]
    created_at: datetime


class PushStore:
    """One consumer's rows of the push tables."""

    def __init__(self, control_url: str, consumer: str) -> None:
        self.url, self.consumer = control_url, consumer

    # --- feed cursors -------------------------------------------------------------------------

    def cursor(self, feed: str) -> tuple[int, int]:
        with engine_for(self.url).connect() as conn:
            row = conn.execute(
                select(NgsiLdCursor.seq, NgsiLdCursor.offset).where(
                    NgsiLdCursor.consumer == self.consumer, NgsiLdCursor.feed == feed
                )
            ).first()
        return (int(row.seq), int(row.offset)) if row else (0, 0)

    def save_cursor(self, feed: str, seq: int, offset: int) -> None:
        with session_scope(self.url) as session:
            found = session.get(NgsiLdCursor, (self.consumer, feed))
            if found is None:
                session.add(NgsiLdCursor(consumer=self.consumer, feed=feed, seq=seq, offset=offset))
            else:
                found.seq, found.offset, found.updated_at = seq, offset, datetime.now(UTC)

    # --- the sent-instances ledger ------------------------------------------------------------

    def ledger(self, keys: Iterable[InstanceKey]) -> dict[InstanceKey, bool]:
        """Of `keys`, those in the ledger and whether the broker confirmed them.

        Read per series and time range (ISO 8601 UTC strings order as times), not key by key."""
        wanted = set(keys)
        if not wanted:
            return {}
        entities = sorted({k[0] for k in wanted})
        first, last = min(k[3] for k in wanted), max(k[3] for k in wanted)
        table = NgsiLdSentInstance
        found: dict[InstanceKey, bool] = {}
        with engine_for(self.url).connect() as conn:
            for start in range(0, len(entities), LEDGER_CHUNK):
                query = select(
                    table.entity_id, table.attribute, table.dataset_id, table.observed_at, table.confirmed
                ).where(
                    table.consumer == self.consumer,
                    table.entity_id.in_(entities[start : start + LEDGER_CHUNK]),
                    table.observed_at >= first,
                    table.observed_at <= last,
                )
                for row in conn.execute(query):
                    key = (row[0], row[1], row[2], row[3])
                    if key in wanted:
                        found[key] = bool(row[4])
        return found

    def intend(self, keys: list[InstanceKey]) -> Any:
        """Record instances as about to be sent (unconfirmed), before the request leaves; the
        round's stamp (`sent_at` as stored), which `confirm_round` recognises them by."""
        if not keys:
            return None
        engine = engine_for(self.url)
        now: Any = datetime.now(UTC)
        if engine.dialect.name == "sqlite":  # as UTCDateTime stores it: UTC, no offset
            now = now.replace(tzinfo=None).isoformat(" ", "microseconds")
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        # The driver's own executemany: tens of thousands of rows a round, no per-row ORM or
        # compiled-statement work (what made this the slowest part of a push).
        statement = f"INSERT INTO {_LEDGER.name} ({', '.join(LEDGER_COLUMNS)}) VALUES ({', '.join([mark] * 7)})"
        # In key order: the primary key's B-tree is then filled left to right (about twice as fast here).
        rows = [(self.consumer, e, a, d, o, False, now) for e, a, d, o in sorted(keys)]
        with engine.begin() as conn:
            conn.exec_driver_sql(statement, rows)
        return now

    def confirm_round(self, stamp: Any, ranges: dict[tuple[str, str, str], tuple[str, str]]) -> None:
        """Confirm the instances one `intend` recorded (its `stamp`) for each (entity, attribute,
        datasetId) within [first, last] observedAt: one statement per series attribute instead of
        one per instance. Exact: rows with this round's stamp in a range are the ones intended for
        it, and a series is confirmed only after all of them were written (or found at the broker)."""
        if stamp is None or not ranges:
            return
        engine = engine_for(self.url)
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        statement = (
            f"UPDATE {_LEDGER.name} SET confirmed = {mark} WHERE consumer = {mark} AND entity_id = {mark} "
            f"AND attribute = {mark} AND dataset_id = {mark} AND observed_at >= {mark} AND observed_at <= {mark} "
            f"AND sent_at = {mark}"
        )
        params = [
            (True, self.consumer, *series, first, last, stamp) for series, (first, last) in sorted(ranges.items())
        ]
        with engine.begin() as conn:
            conn.exec_driver_sql(statement, params)

    def confirm(self, keys: list[InstanceKey]) -> None:
        """The broker holds these instances."""
        if keys:
            engine = engine_for(self.url)
            mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
            where = " AND ".join(f"{c} = {mark}" for c in LEDGER_COLUMNS[:5])
            statement = f"UPDATE {_LEDGER.name} SET confirmed = {mark} WHERE {where}"
            with engine.begin() as conn:
                conn.exec_driver_sql(statement, [(True, self.consumer, *key) for key in sorted(keys)])

    def forget(self, keys: list[InstanceKey]) -> None:
        """The broker refused these instances for their content: not stored, to be sent again only
        after the content changes (a dead letter records them)."""
        if keys:
            with engine_for(self.url).begin() as conn:
                conn.execute(FORGET, self._params(keys))

    def _params(self, keys: list[InstanceKey]) -> list[dict[str, str]]:
        return [{"c": self.consumer, "e": e, "a": a, "d": d, "o": o} for e, a, d, o in keys]

    # --- dead letters -------------------------------------------------------------------------

    def add_dead(self, letters: list[DeadLetter], channel: str, feed: str | None) -> None:
        if not letters:
            return
        now = datetime.now(UTC)
        with session_scope(self.url) as session:
            for letter in letters:
                entity = letter.entity
                kind = entity.get("type")
                session.add(
                    NgsiLdDeadLetter(
                        consumer=self.consumer,
                        channel=channel,
                        feed=feed,
                        entity_id=str(entity.get("id", ""))[:300],
                        entity_type=str(kind[0] if isinstance(kind, list) else kind)[:100],
                        error_type=letter.error.kind[:100],
                        status=letter.error.status,
                        title=letter.error.title[:200],
                        attempts=letter.attempts,
                        payload=json.dumps(entity, ensure_ascii=False, separators=(",", ":")),
                        failed_at=now,
                    )
                )

    # --- the relay's Alert outbox -------------------------------------------------------------

    def alerts(self, outbox: str, limit: int) -> list[OutboxAlert]:
        """The oldest outbox rows for this consumer's broker, in seq order."""
        query = (
            select(OutboxMessage.seq, OutboxMessage.alarm_id, OutboxMessage.payload, OutboxMessage.created_at)
            .where(OutboxMessage.destination == outbox)
            .order_by(OutboxMessage.seq)
            .limit(limit)
        )
        with engine_for(self.url).connect() as conn:
            return [OutboxAlert(r.seq, r.alarm_id, json.loads(r.payload), r.created_at) for r in conn.execute(query)]

    def done_alerts(self, outbox: str, seqs: list[int]) -> None:
        if not seqs:
            return
        with engine_for(self.url).begin() as conn:
            conn.execute(delete(OutboxMessage).where(OutboxMessage.destination == outbox, OutboxMessage.seq.in_(seqs)))
