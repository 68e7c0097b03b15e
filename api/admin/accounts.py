"""Console accounts: add, list, disable (`neuron admins ...`) and check a password.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second
recommendation). After `max_failures` wrong passwords in a row an account is locked for
`lockout`; the answer to a locked account, an unknown name or a wrong password is the
same, so the sign-in form tells an attacker nothing about which names exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, or_, select, update

from kernel.errors import ConfigError
from warehouse.control import session_scope
from warehouse.models import ROLES, AdminSession, AdminUser, utcnow

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
MIN_PASSWORD = 10
HASHER = PasswordHasher()
# Verified against when the name is unknown, so that answer takes as long as a wrong password.
_DUMMY_HASH = HASHER.hash("not a password of anyone")


@dataclass(frozen=True)
class Lockout:
    """How many wrong passwords in a row lock an account, and for how long."""

    max_failures: int = 5
    duration: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class AdminInfo:
    """An account as `admins list` and the console show it (never the hash)."""

    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None
    locked_until: datetime | None


def add_admin(url: str, name: str, role: str, password: str) -> None:
    """Create an account (or reset a disabled one's password and role); ConfigError if invalid."""
    if not NAME.match(name):
        raise ConfigError(f"admin name {name!r} must be lower-case letters, digits, '_', '.', '-'")
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password must have at least {MIN_PASSWORD} characters")
    with session_scope(url) as session:
        user = session.get(AdminUser, name)
        if user is not None and user.disabled_at is None:
            raise ConfigError(f"admin {name!r} exists; disable it first to reset it")
        if user is None:
            user = AdminUser(name=name, created_at=utcnow())
            session.add(user)
        user.role, user.password_hash = role, HASHER.hash(password)
        user.disabled_at, user.failed_attempts, user.locked_until = None, 0, None


def list_admins(url: str) -> list[AdminInfo]:
    """Every account, disabled ones included, by name."""
    with session_scope(url) as session:
        users = session.execute(select(AdminUser).order_by(AdminUser.name)).scalars().all()
        return [AdminInfo(u.name, u.role, u.created_at, u.disabled_at, u.locked_until) for u in users]


def disable_admin(url: str, name: str) -> None:
    """Disable an account and end its sessions at once (idempotent)."""
    with session_scope(url) as session:
        user = session.get(AdminUser, name)
        if user is None:
            raise ConfigError(f"no admin {name!r}")
        user.disabled_at = user.disabled_at or utcnow()
        for live in session.execute(select(AdminSession).where(AdminSession.user_name == name)).scalars():
            session.delete(live)


def check_password(url: str, name: str, password: str, now: datetime, lockout: Lockout) -> AdminUser | None:
    """The account if `password` is right and it may sign in now; None otherwise (counted).

    The failure counter is moved by one UPDATE each (issue 17): the database, not Python,
    adds one, so concurrent wrong passwords cannot overwrite each other's counts, and the
    statement that reaches `max_failures` is the one that sets the lock. The success path
    is one guarded UPDATE too, so a right password racing the lock cannot clear it.
    """
    with session_scope(url) as session:
        user = session.get(AdminUser, name) if NAME.match(name) else None
        if user is None:
            _verify(_DUMMY_HASH, password)
            return None
        session.expunge(user)
    right = _verify(user.password_hash, password)  # slow (argon2): outside any transaction
    unlocked = or_(AdminUser.locked_until.is_(None), AdminUser.locked_until <= now)
    mine = AdminUser.name == name
    with session_scope(url) as session:
        if right:
            signed_in = session.execute(
                update(AdminUser)
                .where(mine, unlocked, AdminUser.disabled_at.is_(None))
                .values(failed_attempts=0, locked_until=None)
                .execution_options(synchronize_session=False)
            )
            if signed_in.rowcount == 1:  # type: ignore[attr-defined]
                if HASHER.check_needs_rehash(user.password_hash):
                    session.execute(update(AdminUser).where(mine).values(password_hash=HASHER.hash(password)))
                return user
        # SET expressions read the row as it was before this statement: both see the same count.
        reached = AdminUser.failed_attempts + 1 >= lockout.max_failures
        session.execute(
            update(AdminUser)
            .where(mine, unlocked)
            .values(
                failed_attempts=case((reached, 0), else_=AdminUser.failed_attempts + 1),
                locked_until=case((reached, now + lockout.duration), else_=AdminUser.locked_until),
            )
            .execution_options(synchronize_session=False)
        )
        return None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
