"""The two-person rule for consumer keys (issue 17): in the console, registering a key or
revoking a consumer is asked for by one admin and carried out only when a second, different
admin confirms it within `CONFIRM_WITHIN`. Both steps are audited under their own names.

Chosen over a TOTP second factor: a stolen session or a coerced admin is the threat here,
and a second person sees the request (consumer, key fingerprint) before it takes effect,
which a second factor of the same person does not give. The CLI (`neuron consumers ...`)
stays single-person: it needs a shell on the hub, a stronger position already.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from api.consumers import raw_public_key, register_consumer, revoke_consumer
from kernel.errors import ConfigError
from kernel.settings import Settings
from warehouse.control import session_scope
from warehouse.models import AdminPending

ACTIONS = ("revoke", "key")
CONFIRM_WITHIN = timedelta(hours=24)


@dataclass(frozen=True)
class Pending:
    """A request as the consumers page lists it."""

    id: int
    action: str
    consumer: str
    requested_by: str
    requested_at: datetime


@dataclass(frozen=True)
class Done:
    """What a confirmation carried out, for the audit entry."""

    action: str
    consumer: str
    requested_by: str
    key_id: str | None


def request_change(settings: Settings, who: str, action: str, consumer: str, pem: str | None, now: datetime) -> int:
    """Record a request (a key is checked now, so a bad one is refused to the first admin)."""
    if action not in ACTIONS:
        raise ConfigError(f"unknown action {action!r}")
    if action == "key":
        raw_public_key((pem or "").encode())  # ConfigError if not an Ed25519 public key
    with session_scope(settings.control_url) as session:
        row = AdminPending(
            action=action, consumer=consumer, public_key=pem if action == "key" else None,
            requested_by=who, requested_at=now,
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


def open_requests(settings: Settings, now: datetime) -> list[Pending]:
    """Requests neither decided nor expired, oldest first."""
    with session_scope(settings.control_url) as session:
        rows = session.execute(
            select(AdminPending)
            .where(AdminPending.decided_at.is_(None), AdminPending.requested_at > now - CONFIRM_WITHIN)
            .order_by(AdminPending.id)
        ).scalars()
        return [Pending(r.id, r.action, r.consumer, r.requested_by, r.requested_at) for r in rows]


def confirm(settings: Settings, request_id: int, who: str, now: datetime) -> Done:
    """Carry out a request confirmed by `who`; ConfigError if it is theirs, decided or expired."""
    with session_scope(settings.control_url) as session:
        row = session.get(AdminPending, request_id, with_for_update=True)
        if row is None or row.decided_at is not None or row.requested_at <= now - CONFIRM_WITHIN:
            raise ConfigError("no such open request")
        if row.requested_by == who:
            raise ConfigError("a second admin must confirm it")
        row.decided_by, row.decided_at = who, now
        action, consumer, pem, requester = row.action, row.consumer, row.public_key, row.requested_by
    key_id = None
    if action == "revoke":
        revoke_consumer(settings, consumer)
    else:
        key_id = register_consumer(settings, consumer, (pem or "").encode(), None)
    return Done(action, consumer, requester, key_id)
