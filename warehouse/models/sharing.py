"""Who receives what: consumers, their signing and encryption keys, nonces, published partitions, consent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.models.base import Base, UTCDateTime, utcnow


class Consumer(Base):
    """An organisation that pulls feeds; what it may see is its sharing policy."""

    __tablename__ = "consumers"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    policy: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ConsumerKey(Base):
    """A consumer's Ed25519 public key for request signatures (several during a hand-over)."""

    __tablename__ = "consumer_keys"
    key_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    consumer: Mapped[str] = mapped_column(ForeignKey("consumers.name"), index=True)
    public_key: Mapped[str] = mapped_column(String(100))  # raw 32 bytes, base64url
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SeenNonce(Base):
    """A request nonce already used by a key; kept for the signature window to stop replays."""

    __tablename__ = "nonces"
    key_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Partition(Base):
    """One version of one published partition of a feed for one consumer.

    `seq` orders every publication and is the change-log cursor consumers follow.
    """

    __tablename__ = "partitions"
    __table_args__ = (
        UniqueConstraint("consumer", "feed", "partition_key", "version"),
        Index("ix_partitions_consumer_feed_seq", "consumer", "feed", "seq"),
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(100))
    feed: Mapped[str] = mapped_column(String(100))
    partition_key: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(500))  # relative to the lake
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(BigInteger)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    policy_fingerprint: Mapped[str] = mapped_column(String(100))
    # The consumer's grant of this feed when published (Policy.treatment_fingerprint); null before 0010.
    treatment_fingerprint: Mapped[str | None] = mapped_column(String(100), nullable=True)
    manifest_jws: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsumerEncryptionKey(Base):
    """A consumer's X25519 public key for sealed identifiers."""

    __tablename__ = "consumer_encryption_keys"
    key_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    consumer: Mapped[str] = mapped_column(ForeignKey("consumers.name"), index=True)
    public_key: Mapped[str] = mapped_column(String(100))  # raw 32 bytes, base64url
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ConsentRecord(Base):
    """A household's current consent to one optional function."""

    __tablename__ = "consent"
    household_token: Mapped[str] = mapped_column(String(64), primary_key=True)
    function: Mapped[str] = mapped_column(String(40), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(100))
