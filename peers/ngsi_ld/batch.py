"""Entities into a broker in chunks, retrying only what failed.

Chunks hold at most `chunk_size` entities (the broker's limit, 1,000 for Orion-LD). From a 207
only the entities whose error is transient (InternalError, a 5xx, one the result left out) are
sent again, with exponential backoff; an entity refused for its content (BadRequestData, …) is
not retried: it becomes a dead letter at once. A whole request that fails transiently (5xx,
timeout) is retried as a whole, and after `max_attempts` the push stops with the entities
still pending (the caller keeps its cursor: nothing is dropped while a broker is down). A
broker whose limit is below the chunk size (413) has the chunk halved until it fits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neuron.errors import RetriableError
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
    """One entity per id, the last given (a later state of the same entity wins), in first-seen order."""
    latest: dict[str, Entity] = {}
    for entity in entities:
        latest[str(entity["id"])] = entity
    return list(latest.values())


class Pusher:
    """The retry policy of one consumer's pushes."""

    def __init__(self, client: BrokerClient, sleep: Sleep = time.sleep) -> None:
        self.client, self.sleep = client, sleep
        self.push = client.push

    def backoff(self, attempt: int) -> float:
        return min(self.push.backoff_max_seconds, self.push.backoff_seconds * 2 ** (attempt - 1))

    def upsert(self, entities: list[Entity], outcome: PushOutcome | None = None) -> PushOutcome:
        """Upsert every entity, chunk by chunk; RetriableError if the broker stays unavailable
        (what was taken before that is in `outcome.succeeded`, when the caller passes one)."""
        outcome = outcome if outcome is not None else PushOutcome()
        pending = latest_by_id(entities)
        size = self.push.chunk_size
        while pending:
            chunk, pending = pending[:size], pending[size:]
            started = time.perf_counter()
            try:
                self._chunk(chunk, outcome)
            except BatchTooLarge:
                if size == 1:
                    raise
                size = max(1, size // 2)  # the broker's limit is lower: halve until it fits
                pending = chunk + pending
                continue
            outcome.chunk_seconds.append(time.perf_counter() - started)
        return outcome

    def _chunk(self, chunk: list[Entity], outcome: PushOutcome) -> None:
        todo = chunk
        tries: dict[str, int] = {}
        failures = 0  # whole-request transient failures in a row
        while todo:
            try:
                result = self.client.upsert(todo)
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
