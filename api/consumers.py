"""Consumers and their request-signing keys: register, list, revoke (`neuron consumers add|list|revoke`).

Only public keys reach the hub; a consumer generates its key pair itself. Revocation
takes effect on the next request, because every request looks its key up afresh.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from kernel.errors import ConfigError
from kernel.settings import Settings
from privacy import keys
from privacy.keys import b64u
from privacy.policy import load_policies
from warehouse.control import session_scope
from warehouse.models import Consumer, ConsumerKey, utcnow

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class KeyInfo:
    """One of a consumer's keys."""

    key_id: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class ConsumerInfo:
    """A consumer, its policy and its keys."""

    name: str
    policy: str
    created_at: datetime
    revoked_at: datetime | None
    keys: list[KeyInfo]


def raw_public_key(public_key_pem: bytes) -> bytes:
    """The 32 raw bytes of an Ed25519 public key given as PEM; ConfigError for anything else."""
    return keys.raw_public_key(public_key_pem, Ed25519PublicKey, "consumer keys")


def key_id_for(name: str, raw_key: bytes) -> str:
    """The key id: the consumer's name and the first 8 hex digits of the key's SHA-256."""
    return f"{name}-{hashlib.sha256(raw_key).hexdigest()[:8]}"


def register_consumer(settings: Settings, name: str, public_key_pem: bytes, policy: str | None = None) -> str:
    """Add the consumer (if new, under `policy`, default its name) and the key; return the key id."""
    if not NAME.match(name):
        raise ConfigError(f"consumer name {name!r} must be lower-case letters, digits, '_', '.', '-'")
    raw = raw_public_key(public_key_pem)
    key_id = key_id_for(name, raw)
    with session_scope(settings.control_url) as session:
        consumer = session.get(Consumer, name)
        if consumer is None:
            policy_name = policy or name
            if policy_name not in load_policies(settings.policies_dir):
                raise ConfigError(f"no sharing policy {policy_name!r} in {settings.policies_dir}")
            session.add(Consumer(name=name, policy=policy_name, created_at=utcnow()))
        elif consumer.revoked_at is not None:
            raise ConfigError(f"consumer {name!r} was revoked; register it under a new name")
        elif policy is not None and policy != consumer.policy:
            raise ConfigError(f"consumer {name!r} already has policy {consumer.policy!r}")
        existing = session.get(ConsumerKey, key_id)
        if existing is not None:
            if existing.public_key != b64u(raw):
                raise ConfigError(f"key id {key_id} is taken by another key; generate a new key")
            if existing.revoked_at is not None:
                raise ConfigError(f"key {key_id} was revoked; generate a new key")
            return key_id
        session.add(ConsumerKey(key_id=key_id, consumer=name, public_key=b64u(raw), created_at=utcnow()))
    return key_id


def list_consumers(settings: Settings) -> list[ConsumerInfo]:
    """Every consumer with its keys, revoked ones included, by name."""
    with session_scope(settings.control_url) as session:
        consumers = session.execute(select(Consumer).order_by(Consumer.name)).scalars().all()
        keys = session.execute(select(ConsumerKey).order_by(ConsumerKey.created_at)).scalars().all()
        return [
            ConsumerInfo(
                name=c.name,
                policy=c.policy,
                created_at=c.created_at,
                revoked_at=c.revoked_at,
                keys=[KeyInfo(k.key_id, k.created_at, k.revoked_at) for k in keys if k.consumer == c.name],
            )
            for c in consumers
        ]


def revoke_consumer(settings: Settings, name: str) -> None:
    """Revoke a consumer and all its keys, effective at once (idempotent)."""
    now = utcnow()
    with session_scope(settings.control_url) as session:
        consumer = session.get(Consumer, name)
        if consumer is None:
            raise ConfigError(f"no consumer {name!r}")
        consumer.revoked_at = consumer.revoked_at or now
        for key in session.execute(select(ConsumerKey).where(ConsumerKey.consumer == name)).scalars():
            key.revoked_at = key.revoked_at or now


def revoke_key(settings: Settings, key_id: str) -> None:
    """Revoke one key, effective at once (idempotent); the consumer's other keys stay valid."""
    with session_scope(settings.control_url) as session:
        key = session.get(ConsumerKey, key_id)
        if key is None:
            raise ConfigError(f"no consumer key {key_id!r}")
        key.revoked_at = key.revoked_at or utcnow()
