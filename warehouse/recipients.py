"""Consumers' encryption keys (X25519): what entitled identifiers are sealed to.

A consumer registers an encryption key beside its Ed25519 request-signing key; only the
public half reaches the hub. Values are sealed to the newest key not revoked of the
consumers bound to a policy, and each sealed value names its key id, so a consumer
handing over to a new key knows which private key opens what.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from sqlalchemy import select

from kernel.errors import ConfigError
from kernel.settings import Settings
from privacy.keys import b64u, b64u_decode, raw_public_key
from privacy.seal import Recipient
from warehouse.control import session_scope
from warehouse.models import Consumer, ConsumerEncryptionKey, utcnow


def raw_x25519(public_key_pem: bytes) -> bytes:
    """The 32 raw bytes of an X25519 public key given as PEM; ConfigError for anything else."""
    return raw_public_key(public_key_pem, X25519PublicKey, "encryption keys")


def register_encryption_key(settings: Settings, consumer: str, public_key_pem: bytes) -> str:
    """Register an X25519 public key for a registered consumer; returns its key id."""
    raw = raw_x25519(public_key_pem)
    key_id = f"{consumer}-enc-{hashlib.sha256(raw).hexdigest()[:8]}"
    with session_scope(settings.control_url) as session:
        found = session.get(Consumer, consumer)
        if found is None or found.revoked_at is not None:
            raise ConfigError(f"no active consumer {consumer!r}: add it with its signing key first")
        existing = session.get(ConsumerEncryptionKey, key_id)
        if existing is not None:
            if existing.revoked_at is not None:
                raise ConfigError(f"encryption key {key_id} was revoked; generate a new key")
            return key_id
        session.add(ConsumerEncryptionKey(key_id=key_id, consumer=consumer, public_key=b64u(raw), created_at=utcnow()))
    return key_id


def revoke_encryption_key(settings: Settings, key_id: str) -> None:
    """Stop sealing to a key from the next batch on (idempotent)."""
    with session_scope(settings.control_url) as session:
        key = session.get(ConsumerEncryptionKey, key_id)
        if key is None:
            raise ConfigError(f"no encryption key {key_id!r}")
        key.revoked_at = key.revoked_at or utcnow()


def recipients_by_policy(settings: Settings) -> dict[str, Recipient]:
    """For each policy, the key its entitled values are sealed to now (the newest active one)."""
    with session_scope(settings.control_url) as session:
        rows = session.execute(
            select(Consumer.policy, ConsumerEncryptionKey)
            .join(Consumer, Consumer.name == ConsumerEncryptionKey.consumer)
            .where(Consumer.revoked_at.is_(None), ConsumerEncryptionKey.revoked_at.is_(None))
            .order_by(ConsumerEncryptionKey.created_at, ConsumerEncryptionKey.key_id)
        ).all()
        return {
            policy: Recipient(policy, key.key_id, X25519PublicKey.from_public_bytes(b64u_decode(key.public_key)))
            for policy, key in rows
        }
