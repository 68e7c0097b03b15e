"""Group commit of the API's audit entries: every response waits for its entry's commit, and
entries that arrive while a commit is under way go together in the next one.

A commit of the control database costs an fsync (milliseconds on SQLite); one per request
would cap the API at a few hundred requests a second and make each wait for the others.
Here concurrent requests share one transaction: the same durability per entry, the fsync
paid once per batch. Each entry claims its request's nonce in the same transaction; a nonce
already claimed (a replay racing its original) makes that entry's verdict `replay` and
writes nothing for it, and the gate then logs the refusal instead.

The same transaction checks that each authenticated request's key and consumer are still
live (one query per batch): the API authenticates from a cache of keys (api.auth), and
this check is what keeps a revocation effective at once. The batch locks the chain's head
before it reads the keys, so a revocation has either committed before that read (the
request is refused, verdict `revoked_key`) or commits after the entry, which the response
never precedes: no response leaves after its key's revocation was committed, save one
that was already on its way when the revocation landed (PostgreSQL's read-committed
statements leave that window of well under a millisecond; SQLite's single writer none).

Entries are built and hashed by the one builder `warehouse.audit.new_entry`, as
`append_audit` builds them, only inserted in one statement per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from warehouse.audit import HEAD_ID, AuditFacts, _lock_head, new_entry
from warehouse.control import engine_for
from warehouse.models import AuditEntry, AuditHead, Consumer, ConsumerKey, SeenNonce

MAX_BATCH = 256
WRITTEN, REPLAYED, REVOKED = "written", "replay", "revoked_key"  # an entry's verdict
COLUMNS = [c.key for c in AuditEntry.__table__.columns]
# Statements built once (building one costs more than running it on SQLite). The nonce claim
# is executed for many rows at once ("insertmanyvalues"); RETURNING names the rows inserted,
# so a nonce that was already there is told apart from a new one.
LOCK_HEAD = (
    update(AuditHead)
    .where(AuditHead.id == HEAD_ID)
    .values(last_seq=AuditHead.last_seq)
    .returning(AuditHead.last_seq, AuditHead.last_hash)
)
MOVE_HEAD = (
    update(AuditHead).where(AuditHead.id == HEAD_ID).values(last_seq=bindparam("seq"), last_hash=bindparam("hash"))
)
INSERT_ENTRIES = insert(AuditEntry)
# One point query per distinct key of a batch (a batch holds a few consumers' requests): an
# IN list would be compiled again for every batch size.
LIVE_KEY = (
    select(ConsumerKey.key_id)
    .join(Consumer, Consumer.name == ConsumerKey.consumer)
    .where(ConsumerKey.key_id == bindparam("key_id"), ConsumerKey.revoked_at.is_(None), Consumer.revoked_at.is_(None))
)
CLAIM = {
    name: module.insert(SeenNonce).on_conflict_do_nothing().returning(SeenNonce.key_id, SeenNonce.nonce)
    for name, module in (("sqlite", sqlite), ("postgresql", postgresql))
}


@dataclass(frozen=True)
class AuditRecord(AuditFacts):
    """One entry to append, the request nonce it claims (key id, nonce), if any, and the
    consumer key (`key_id`) that must still be live for it to be written."""

    nonce: tuple[str, str] | None = None
    key_id: str | None = None


class AuditWriter:
    """Appends records to the audit chain in batches; `append` returns once its batch committed."""

    def __init__(self, control_url: str, after: Callable[[Connection, datetime], None] | None = None) -> None:
        self.control_url = control_url
        self.after = after  # run in each batch's transaction (the nonce store's purge)
        self._pending: list[tuple[AuditRecord, asyncio.Future[str]]] = []
        self._draining: asyncio.Task[None] | None = None
        self._lock_file: int | None = None
        self._lock_guard = threading.Lock()

    async def append(self, record: AuditRecord) -> str:
        """Commit the record: WRITTEN, or (nothing written) REPLAYED when its nonce was claimed
        before, REVOKED when its key or consumer is no longer live."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.get_running_loop().create_task(self._drain())
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                written = await anyio.to_thread.run_sync(self.write, [record for record, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), ok in zip(batch, written, strict=True):
                if not future.done():
                    future.set_result(ok)

    def write(self, records: list[AuditRecord]) -> list[str]:
        """Write a batch in one transaction; per record, its verdict."""
        with self._one_writer(), engine_for(self.control_url).begin() as connection:
            last_seq, last_hash = _lock_head_row(connection)  # first: the key check below must follow it
            live = _live_keys(connection, {r.key_id for r in records if r.key_id is not None})
            admitted = [r for r in records if r.key_id is None or r.key_id in live]
            claimed = _claim(connection, [r for r in admitted if r.nonce is not None])
            written: list[str] = []
            rows: list[dict[str, Any]] = []
            for record in records:
                if record.key_id is not None and record.key_id not in live:
                    written.append(REVOKED)
                    continue
                if record.nonce is not None:
                    if record.nonce not in claimed:
                        written.append(REPLAYED)
                        continue
                    claimed.discard(record.nonce)  # the same nonce twice in one batch: the second is a replay
                row = new_entry(last_seq + 1, last_hash, record)
                last_seq, last_hash = row["seq"], row["entry_hash"]
                rows.append(row)
                written.append(WRITTEN)
            if rows:
                connection.execute(INSERT_ENTRIES, rows)
                connection.execute(MOVE_HEAD, {"seq": last_seq, "hash": last_hash})
            if self.after is not None and records:
                self.after(connection, records[-1].at)
        return written

    @contextlib.contextmanager
    def _one_writer(self) -> Iterator[None]:
        """On SQLite, one batch at a time across the API's processes (uvicorn workers).

        SQLite's busy handler polls for its write lock with sleeps of up to 100 ms, so two
        processes appending at once would make their requests wait for the sleeps. A lock
        file beside the database queues them instead, woken the moment it is free. (Other
        writers of the control database do not take it; SQLite's own lock still orders them.)
        """
        if not self.control_url.startswith("sqlite:///"):
            yield
            return
        with self._lock_guard:
            if self._lock_file is None:
                path = Path(self.control_url.removeprefix("sqlite:///")).with_suffix(".audit-lock")
                self._lock_file = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)


def _lock_head_row(connection: Connection) -> tuple[int, str]:
    """Lock the chain's head (as `warehouse.audit` does: a no-op UPDATE) and read it."""
    head = connection.execute(LOCK_HEAD).first()
    if head is None:  # no head yet (the first entry ever, or a lost head): the model's own path makes it
        with Session(bind=connection) as session:
            made = _lock_head(session)
            session.flush()
            return made.last_seq, made.last_hash
    return int(head.last_seq), str(head.last_hash)


def _live_keys(connection: Connection, key_ids: set[str]) -> set[str]:
    """Those of the keys that are live, and whose consumer is."""
    return {key_id for key_id in sorted(key_ids) if connection.execute(LIVE_KEY, {"key_id": key_id}).first()}


def _claim(connection: Connection, records: list[AuditRecord]) -> set[tuple[str, str]]:
    """Insert the records' nonces, those not there already; the ones inserted."""
    if not records:
        return set()
    values = [{"key_id": r.nonce[0], "nonce": r.nonce[1], "seen_at": r.at} for r in records if r.nonce]
    statement = CLAIM["postgresql" if connection.dialect.name == "postgresql" else "sqlite"]
    return {(key_id, nonce) for key_id, nonce in connection.execute(statement, values)}
