"""Where used request nonces are remembered: the control database by default, Redis when
configured. A nonce stays remembered for two signature windows: a request is accepted
while |now - created| <= window, so its nonce could be presented again until then.

The database store claims a nonce in the same transaction as the request's audit entry
(api.audit_writer: one write per request instead of two), and the table's unique key is
the authority: a replay is refused there even when it reaches another API process, or
races its original. Redis claims at once (SET NX), equally shared by every process.

In front of either, each process remembers the nonces it accepted (`RecentNonces`): a
replay to the same process is refused at once, without a database round trip. The lean
authentication path (api.auth) asks only this memory; a replay it cannot see (sent to
another worker, or after a restart) runs its route but is refused when its audit entry
fails to claim the nonce, before any byte of its response leaves.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, delete, select

from kernel.errors import Refused
from warehouse.control import engine_for
from warehouse.models import SeenNonce

PURGE_INTERVAL = timedelta(minutes=1)
RECENT_LIMIT = 100_000  # nonces remembered per process (about 10 MiB); the store stays the authority
PREFIX = "neuron:nonce:"
SEEN = select(SeenNonce.key_id).where(SeenNonce.key_id == bindparam("key_id"), SeenNonce.nonce == bindparam("nonce"))


class NonceReused(Refused):
    """The nonce was used before by the same key."""


class NonceStore(Protocol):
    """Remembers nonces per key id."""

    deferred: bool  # True: the nonce is claimed with the request's audit entry (api.audit_writer)

    def check(self, key_id: str, nonce: str, now: datetime, connection: Connection | None = None) -> None:
        """NonceReused if the nonce was used; a store that is not deferred also claims it here."""
        ...


class RecentNonces:
    """The nonces this process accepted within two signature windows, in memory (a fast path only)."""

    def __init__(self, window: timedelta, limit: int = RECENT_LIMIT) -> None:
        self.keep = 2 * window
        self.limit = limit
        self._until: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def claim(self, key_id: str, nonce: str, now: datetime) -> None:
        """NonceReused if this process accepted the nonce before; else remember it."""
        key = (key_id, nonce)
        with self._lock:
            until = self._until.get(key)
            if until is not None and now < until:
                raise NonceReused
            self._until[key] = now + self.keep
            if len(self._until) > self.limit:
                self._forget(now)

    def _forget(self, now: datetime) -> None:
        # Expired ones first; past the limit, the oldest half too (the store still refuses them).
        self._until = {key: until for key, until in self._until.items() if now < until}
        if len(self._until) > self.limit:
            keep = list(self._until.items())[len(self._until) // 2 :]
            self._until = dict(keep)


class DatabaseNonces:
    """Nonces in the control database's `nonces` table."""

    deferred = True

    def __init__(self, control_url: str, window: timedelta) -> None:
        self.control_url = control_url
        self.window = window
        self._last_purge: datetime | None = None
        self._purge_lock = threading.Lock()

    def check(self, key_id: str, nonce: str, now: datetime, connection: Connection | None = None) -> None:
        params = {"key_id": key_id, "nonce": nonce}
        if connection is not None:
            found = connection.execute(SEEN, params).first()
        else:
            with engine_for(self.control_url).connect() as own:
                found = own.execute(SEEN, params).first()
        if found is not None:
            raise NonceReused

    def purge(self, connection: Connection, now: datetime) -> None:
        """Drop nonces that can no longer be replayed (run inside the audit writer's transaction)."""
        # Nonces older than two windows can no longer be replayed; dropped once a minute at most.
        with self._purge_lock:
            if self._last_purge is not None and now - self._last_purge < PURGE_INTERVAL:
                return
            self._last_purge = now
        connection.execute(delete(SeenNonce).where(SeenNonce.seen_at < now - 2 * self.window))


class RedisNonces:
    """Nonces in Redis as expiring keys; shared by every API process using the server."""

    deferred = False

    def __init__(self, client: Any, window: timedelta) -> None:
        self.client = client
        self.ttl = int(2 * window.total_seconds()) + 1

    def check(self, key_id: str, nonce: str, now: datetime, connection: Connection | None = None) -> None:
        # Hashed: the key's length stays fixed whatever the client sent.
        name = PREFIX + hashlib.sha256(f"{key_id}\x1f{nonce}".encode()).hexdigest()
        if not self.client.set(name, b"1", nx=True, ex=self.ttl):
            raise NonceReused
