"""Server-side console sessions: a random token in an HttpOnly cookie, its SHA-256 and the
session's CSRF token in the control database, an absolute lifetime and an idle timeout."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete

from warehouse.control import session_scope
from warehouse.models import AdminSession, AdminUser

COOKIE = "neuron_admin"


@dataclass(frozen=True)
class Lifetime:
    """How long a session lives at most, and how long it may sit idle."""

    absolute: timedelta = timedelta(hours=8)
    idle: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class Principal:
    """Who is signed in: the account, its role, and the session's CSRF token."""

    name: str
    role: str
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(url: str, user: str, now: datetime, lifetime: Lifetime) -> str:
    """Start a session for `user`; the token for the cookie (stored only as its hash)."""
    token = secrets.token_urlsafe(32)
    with session_scope(url) as session:
        # Expired sessions of anyone go now: the table never grows with abandoned browsers.
        session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
        session.add(
            AdminSession(
                token_hash=_digest(token),
                user_name=user,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                last_seen_at=now,
                expires_at=now + lifetime.absolute,
            )
        )
    return token


def find_session(url: str, token: str | None, now: datetime, lifetime: Lifetime) -> Principal | None:
    """The principal of a live session (touching it), None if absent, expired, idle or disabled."""
    if not token or len(token) > 100:
        return None
    with session_scope(url) as session:
        found = session.get(AdminSession, _digest(token))
        if found is None:
            return None
        user = session.get(AdminUser, found.user_name)
        if found.expires_at <= now or found.last_seen_at + lifetime.idle <= now or user is None or user.disabled_at:
            session.delete(found)
            return None
        found.last_seen_at = max(found.last_seen_at, now)
        return Principal(user.name, user.role, found.csrf_token)


def close_session(url: str, token: str | None) -> None:
    """End a session (sign-out)."""
    if token:
        with session_scope(url) as session:
            session.execute(delete(AdminSession).where(AdminSession.token_hash == _digest(token)))


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
