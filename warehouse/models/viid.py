"""The VIID cascade's control-database tables (peers/viid/): subscriptions, the outbox, passes queued.

The outbox holds each notification as it will be sent, id and body fixed when it is queued,
so a retry after any outage carries the same NotificationID and the same objects. A row is
deleted in the transaction that records its acknowledgement in the audit log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.models.base import Base, UTCDateTime


class ViidSubscription(Base):
    """A subscription the upper platform created on us (A.19), with its state."""

    __tablename__ = "viid_subscriptions"
    subscribe_id: Mapped[str] = mapped_column(String(33), primary_key=True)
    upper_id: Mapped[str] = mapped_column(String(20))  # who created it (User-Identify)
    detail: Mapped[str] = mapped_column(String(100))  # SubscribeDetail as accepted: "13"
    resource_class: Mapped[int] = mapped_column(Integer)
    resource_uri: Mapped[str] = mapped_column(String(256))
    receive_addr: Mapped[str] = mapped_column(String(256))
    begin_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[int] = mapped_column(Integer)  # 0 active, 1 cancelled, 2 expired
    body: Mapped[str] = mapped_column(Text)  # the SubscribeObject as last given (listed back by GET)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ViidNotification(Base):
    """A notification waiting for the upper's acknowledgement (StatusCode 0), then deleted."""

    __tablename__ = "viid_outbox"
    # AUTOINCREMENT on SQLite: a seq is never reused after acknowledged rows are deleted.
    __table_args__ = (Index("ix_viid_outbox_subscription_seq", "subscribe_id", "seq"), {"sqlite_autoincrement": True})
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscribe_id: Mapped[str] = mapped_column(String(33))
    notification_id: Mapped[str] = mapped_column(String(33), unique=True)
    body: Mapped[str] = mapped_column(Text)  # the SubscribeNotificationObject, plates as the policy treats them
    objects: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed sends so far
    # Set when the upper refused the content (StatusCode 8): kept for the operator, never resent.
    refused: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ViidPassSeen(Base):
    """A vendor record already queued for the cascade (by a keyed hash of its id): a re-read skips it."""

    __tablename__ = "viid_passes_seen"
    record_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
