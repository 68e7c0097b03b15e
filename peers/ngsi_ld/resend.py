"""Dead letters sent again: `neuron push resend`, and what an admin asked for in the console.

A dead letter is an entity (or a temporal write) a consumer's broker refused for its content or
kept failing (peers/ngsi_ld/batch.py). Once the cause is mended — the broker's schema, its
limits, an outage that outlasted the retries — an admin re-sends it: from the command line at
once, or from the console, which only marks the letters (it does not reach the brokers) for
`neuron push` to re-send at its next round. Each re-send is a push round like any other, so it
is an export in the audit log (the consumer as actor, the entities delivered, the digests of the
bodies), with who asked and how many letters in `detail.resend`. A letter the broker takes is
resolved; one it refuses again stays open with its new error and attempts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from kernel.errors import RetriableError
from peers.ngsi_ld.batch import DeadLetter
from peers.ngsi_ld.client import TEMPORAL_PATH, UPSERT_PATH, BrokerRefused, EntityError
from peers.ngsi_ld.consumer import ConsumerPush, Round
from warehouse.control import session_scope
from warehouse.models import NgsiLdDeadLetter


@dataclass
class Resent:
    """What one re-send did (counts only)."""

    letters: int = 0  # open letters taken up
    resolved: int = 0  # the broker took them
    still_dead: int = 0  # refused again (or failing still): open, with the new error


def resend_dead_letters(
    consumer: ConsumerPush, requested_by: str, ids: list[int] | None = None, requested_only: bool = False
) -> Resent:
    """Re-send this consumer's open dead letters (only `ids`, or only those the console marked)."""
    query = select(NgsiLdDeadLetter).where(
        NgsiLdDeadLetter.consumer == consumer.push.name, NgsiLdDeadLetter.resolved_at.is_(None)
    )
    if ids is not None:
        query = query.where(NgsiLdDeadLetter.id.in_(ids))
    if requested_only:
        query = query.where(NgsiLdDeadLetter.resend_requested_at.is_not(None))
    with session_scope(consumer.settings.control_url) as session:
        letters = [
            (d.id, d.channel, d.feed, json.loads(d.payload))
            for d in session.scalars(query.order_by(NgsiLdDeadLetter.id))
        ]
    done = Resent(letters=len(letters))
    if not letters:
        return done
    taken: set[int] = set()
    again: dict[int, DeadLetter] = {}
    groups: dict[tuple[str, str | None], list[tuple[int, dict[str, Any]]]] = {}
    for letter_id, channel, feed, entity in letters:
        groups.setdefault((channel, feed), []).append((letter_id, entity))
    for (channel, feed), group in groups.items():
        if channel == "temporal":
            _temporal(consumer, feed, group, requested_by, taken, again)
        else:
            _upserts(consumer, channel, feed, group, requested_by, taken, again)
    _settle(consumer, taken, again)
    done.resolved, done.still_dead = len(taken), len(again)
    return done


def _upserts(
    consumer: ConsumerPush, channel: str, feed: str | None, group: list[tuple[int, dict[str, Any]]],
    requested_by: str, taken: set[int], again: dict[int, DeadLetter],
) -> None:  # fmt: skip
    entities = [entity for _, entity in group]
    done = Round(channel, feed or "", UPSERT_PATH, entities=len(entities))
    done.resend = {"requested_by": requested_by, "dead_letters": len(group)}
    try:
        consumer.pusher.upsert(entities, done.upsert)
    except RetriableError as exc:  # the broker is down: the letters stay open for the next try
        done.error = type(exc).__name__
    finally:
        consumer.record(done)
    dead = {str(d.entity.get("id")): d for d in done.upsert.dead}
    for letter_id, entity in group:
        if str(entity.get("id")) in done.upsert.succeeded:
            taken.add(letter_id)
        elif str(entity.get("id")) in dead:
            again[letter_id] = dead[str(entity.get("id"))]


def _temporal(
    consumer: ConsumerPush, feed: str | None, group: list[tuple[int, dict[str, Any]]],
    requested_by: str, taken: set[int], again: dict[int, DeadLetter],
) -> None:  # fmt: skip
    done = Round("temporal", feed or "", TEMPORAL_PATH, entities=len(group))
    done.resend = {"requested_by": requested_by, "dead_letters": len(group)}
    try:
        for letter_id, entity in group:
            body = dict(entity)
            context = body.pop("@context", None)
            entity_id, entity_type = str(body.pop("id")), str(body.pop("type"))
            try:
                done.upsert.digests.append(consumer.client.temporal_write(entity_id, entity_type, body, context))
                done.upsert.succeeded.append(entity_id)
                taken.add(letter_id)
            except BrokerRefused as refused:
                error = EntityError(entity_id, refused.kind, refused.status, "temporal write refused")
                again[letter_id] = DeadLetter(entity, error, 1)
    except RetriableError as exc:
        done.error = type(exc).__name__
    finally:
        consumer.record(done)


def _settle(consumer: ConsumerPush, taken: set[int], again: dict[int, DeadLetter]) -> None:
    now = datetime.now(UTC)
    with session_scope(consumer.settings.control_url) as session:
        for letter in session.scalars(select(NgsiLdDeadLetter).where(NgsiLdDeadLetter.id.in_(taken | set(again)))):
            letter.resend_requested_at = None
            if letter.id in taken:
                letter.resolved_at = now
            else:
                failed = again[letter.id]
                letter.error_type, letter.status = failed.error.kind[:100], failed.error.status
                letter.title, letter.failed_at = failed.error.title[:200], now
                letter.attempts += failed.attempts
