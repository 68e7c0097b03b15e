"""Entities into a broker in chunks, retrying only what failed.

Chunks hold at most `chunk_size` entities (the broker's limit, 1,000 for Orion-LD). From a 207
only the entities whose error is transient (InternalError, a 5xx, one the result left out) are
sent again, with exponential backoff; an entity refused for its content (BadRequestData, …) is
not retried: it becomes a dead letter at once. A whole request that fails transiently (5xx,
timeout) is retried as a whole, and after `max_attempts` the push stops with the entities
still pending (the caller keeps its cursor: nothing is dropped while a broker is down). A
broker whose limit is below the chunk size (413) has the chunk halved until it fits. Chunks
hold distinct entities (the latest state of each id), so they may go out side by side.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kernel.errors import RetriableError
from peers.ngsi_ld.client import BatchTooLarge, BrokerClient, EntityError

Entity = dict[str, Any]
Sleep = Callable[[float], None]


@dataclass
class DeadLetter:
    """An entity the broker would not take, and its last error (type and status, never a value)."""

    entity: Entity
    error: EntityError
    attempts: int


@dataclass
class PushOutcome:
    """One push's account: what was taken, what is dead, what it cost."""

    succeeded: list[str] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    requests: int = 0
    resent: int = 0  # entities sent again after a per-entity failure
    statuses: list[int] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)  # of each request body, for the audit entry
    chunk_seconds: list[float] = field(default_factory=list)  # each chunk's time, retries included

    @property
    def last_status(self) -> int | None:
        return self.statuses[-1] if self.statuses else None


def latest_by_id(entities: list[Entity]) -> list[Entity]:
    """One entity per id, the last given (a later state of the same entity wins), in first-seen order.

    The standard does not say which of two entities with one id in a batch a broker keeps
    (Orion-LD keeps the last); so the hub never sends two."""
    latest: dict[str, Entity] = {}
    for entity in entities:
        latest[str(entity["id"])] = entity
    return list(latest.values())


class Pusher:
    """The retry policy of one consumer's pushes."""

    def __init__(self, client: BrokerClient, sleep: Sleep = time.sleep) -> None:
        self.client, self.sleep = client, sleep
        self.push = client.push
        # Chunks go out on a few connections at once, so the hub renders the next chunk while
        # the broker parses the last (each connection its own HTTP session; credentials shared).
        extra = [BrokerClient(self.push, client.credentials) for _ in range(self.push.upsert_connections - 1)]
        self.clients = [client, *extra]
        self._idle: queue.SimpleQueue[BrokerClient] = queue.SimpleQueue()
        for each in self.clients:
            self._idle.put(each)
        self.connections = len(self.clients)

    def backoff(self, attempt: int) -> float:
        return min(self.push.backoff_max_seconds, self.push.backoff_seconds * 2 ** (attempt - 1))

    def upsert(self, entities: list[Entity], outcome: PushOutcome | None = None) -> PushOutcome:
        """Upsert every entity, in chunks; RetriableError if the broker stays unavailable (what
        was taken before that is in `outcome.succeeded`, when the caller passes one)."""
        outcome = outcome if outcome is not None else PushOutcome()
        pending = latest_by_id(entities)
        size = self.push.chunk_size
        while pending:
            chunks = [pending[i : i + size] for i in range(0, len(pending), size)]
            with ThreadPoolExecutor(min(self.connections, len(chunks)), thread_name_prefix="ngsi-ld-upsert") as pool:
                results = list(pool.map(self._one_chunk, chunks))
            pending, failure = [], None
            for chunk, part, error in results:
                _merge(outcome, part)
                if isinstance(error, BatchTooLarge):
                    pending += chunk
                elif error is not None:
                    failure = failure or error
            if failure is not None:
                raise failure
            if pending:
                if size == 1:
                    raise BatchTooLarge(f"push {self.push.name}: the broker refuses even one entity per batch", 413)
                size = max(1, size // 2)  # the broker's limit is lower: halve until it fits
        return outcome

    def _one_chunk(self, chunk: list[Entity]) -> tuple[list[Entity], PushOutcome, BaseException | None]:
        """One chunk on an idle connection, with its retries: its own account, and why it stopped."""
        part, client = PushOutcome(), self._idle.get()
        started = time.perf_counter()
        try:
            self._chunk(chunk, part, client)
        except Exception as exc:
            return chunk, part, exc
        finally:
            self._idle.put(client)
        part.chunk_seconds.append(time.perf_counter() - started)
        return chunk, part, None

    def _chunk(self, chunk: list[Entity], outcome: PushOutcome, client: BrokerClient) -> None:
        todo = chunk
        tries: dict[str, int] = {}
        failures = 0  # whole-request transient failures in a row
        while todo:
            try:
                result = client.upsert(todo)
            except RetriableError:
                failures += 1
                outcome.requests += 1
                if failures >= self.push.max_attempts:
                    raise
                self.sleep(self.backoff(failures))
                continue
            failures = 0
            outcome.requests += 1
            outcome.statuses.append(result.status)
            outcome.digests.append(result.body_digest)
            outcome.succeeded.extend(result.succeeded)
            by_id = {str(e["id"]): e for e in todo}
            retry: list[Entity] = []
            for error in result.errors:
                entity = by_id[error.entity_id]
                tries[error.entity_id] = tries.get(error.entity_id, 0) + 1
                if error.transient and tries[error.entity_id] < self.push.max_attempts:
                    retry.append(entity)
                else:
                    outcome.dead.append(DeadLetter(entity, error, tries[error.entity_id]))
            if retry:
                outcome.resent += len(retry)
                self.sleep(self.backoff(max(tries[str(e["id"])] for e in retry)))
            todo = retry


def _merge(outcome: PushOutcome, part: PushOutcome) -> None:
    outcome.succeeded += part.succeeded
    outcome.dead += part.dead
    outcome.requests += part.requests
    outcome.resent += part.resent
    outcome.statuses += part.statuses
    outcome.digests += part.digests
    outcome.chunk_seconds += part.chunk_seconds
