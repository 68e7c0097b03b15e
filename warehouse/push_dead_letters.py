"""The NGSI-LD push's dead letters for people: the console's list and `neuron push dead-letters`.

Read here, beside the table (warehouse/models/ngsi_ld.py), so the console reads them without
importing the pusher (peers/ngsi_ld writes them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update

from kernel.settings import Settings
from warehouse.control import engine_for
from warehouse.models import NgsiLdDeadLetter


def dead_letters(control_url: str, consumer: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Open dead letters, newest first (the console's list): no payload, only what names the failure."""
    columns = [
        NgsiLdDeadLetter.id,
        NgsiLdDeadLetter.consumer,
        NgsiLdDeadLetter.channel,
        NgsiLdDeadLetter.feed,
        NgsiLdDeadLetter.entity_id,
        NgsiLdDeadLetter.entity_type,
        NgsiLdDeadLetter.error_type,
        NgsiLdDeadLetter.status,
        NgsiLdDeadLetter.title,
        NgsiLdDeadLetter.attempts,
        NgsiLdDeadLetter.failed_at,
        NgsiLdDeadLetter.resend_requested_at,
    ]
    query = select(*columns).where(NgsiLdDeadLetter.resolved_at.is_(None))
    if consumer is not None:
        query = query.where(NgsiLdDeadLetter.consumer == consumer)
    query = query.order_by(NgsiLdDeadLetter.failed_at.desc(), NgsiLdDeadLetter.id.desc()).limit(limit)
    with engine_for(control_url).connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def dead_letter_counts(control_url: str) -> dict[str, int]:
    """Open dead letters per consumer."""
    query = (
        select(NgsiLdDeadLetter.consumer, func.count())
        .where(NgsiLdDeadLetter.resolved_at.is_(None))
        .group_by(NgsiLdDeadLetter.consumer)
    )
    with engine_for(control_url).connect() as conn:
        return {str(name): int(n) for name, n in conn.execute(query)}


def console_dead_letters(settings: Settings) -> list[dict[str, Any]]:
    """The admin console's list (api/admin/overview.py): open dead letters of every consumer."""
    rows = dead_letters(settings.control_url)
    for row in rows:
        row["http_status"] = row.pop("status")  # `status` is the console's own (a state it translates)
    return rows


def request_resend(control_url: str, now: datetime | None = None) -> int:
    """Mark every open dead letter for a re-send (the console's button); how many were marked.

    The console does not reach the brokers: `neuron push` re-sends what is marked at its next
    round (peers/ngsi_ld/resend.py) and audits it; the caller audits the request.
    """
    marked = (
        update(NgsiLdDeadLetter)
        .where(NgsiLdDeadLetter.resolved_at.is_(None), NgsiLdDeadLetter.resend_requested_at.is_(None))
        .values(resend_requested_at=now or datetime.now(UTC))
    )
    with engine_for(control_url).begin() as conn:
        return int(conn.execute(marked).rowcount or 0)
