"""The relay's control-database tables: alarms, their lifecycle history, the outbox, inbound ids.

One transaction per group commit writes all four, so an inbound alarm is either wholly
recorded (state, history, one outbox row per destination, its msg_id) or not at all, and
is acknowledged to the community broker only after that commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.models.base import Base, UTCDateTime


class RelayAlarm(Base):
    """An alarm as the relay tracks it across its lifecycle (one row per alarm)."""

    __tablename__ = "relay_alarms"
    __table_args__ = (Index("ix_relay_alarms_device_category", "device_id", "category"),)
    alarm_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    community_id: Mapped[str] = mapped_column(String(100))
    family: Mapped[str] = mapped_column(String(50))
    category: Mapped[str] = mapped_column(String(50))
    device_id: Mapped[str] = mapped_column(String(100))  # the hub's token for in-home devices
    # An in-home device's household as the hub's staging token (the consent store's key), for consent.
    household: Mapped[str | None] = mapped_column(String(100), nullable=True)
    severity: Mapped[str] = mapped_column(String(20))  # the highest reached
    state: Mapped[str] = mapped_column(String(20))
    building: Mapped[str | None] = mapped_column(String(20), nullable=True)
    unit: Mapped[str | None] = mapped_column(String(20), nullable=True)
    room_no: Mapped[str | None] = mapped_column(String(120), nullable=True)  # encrypted (relay/rooms.py)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_event_time: Mapped[datetime] = mapped_column(UTCDateTime)  # the device's clock
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    updates: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    # JSON {upstream: {field: value sealed to that consumer's key}}: what it is entitled to, kept so
    # that events after a restart (escalation, clearing) carry it too; never a raw identifier.
    sealed: Mapped[str | None] = mapped_column(Text, nullable=True)


class AlarmLifecycleEvent(Base):
    """One lifecycle event; the `alarm_lifecycle` stream loads these by `recorded_at`."""

    __tablename__ = "relay_lifecycle"
    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    alarm_id: Mapped[str] = mapped_column(String(100), index=True)
    community_id: Mapped[str] = mapped_column(String(100))
    family: Mapped[str] = mapped_column(String(50))
    category: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    building: Mapped[str | None] = mapped_column(String(20), nullable=True)
    unit: Mapped[str | None] = mapped_column(String(20), nullable=True)
    room_no: Mapped[str | None] = mapped_column(String(120), nullable=True)  # encrypted (relay/rooms.py)
    device_id: Mapped[str] = mapped_column(String(100))
    household: Mapped[str | None] = mapped_column(String(100), nullable=True)  # the hub's token (consent)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class OutboxMessage(Base):
    """A signed message waiting for its destination broker's acknowledgement (then deleted)."""

    __tablename__ = "relay_outbox"
    # AUTOINCREMENT on SQLite: a seq is never reused after the newest rows are deleted, so a
    # publisher that has sent up to N never misses a later row numbered N again.
    __table_args__ = (Index("ix_relay_outbox_destination_seq", "destination", "seq"), {"sqlite_autoincrement": True})
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    destination: Mapped[str] = mapped_column(String(100))  # an upstream's name, or "community"
    topic: Mapped[str] = mapped_column(String(500))
    payload: Mapped[str] = mapped_column(Text)
    alarm_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboundSeen(Base):
    """A device message already recorded (hash of topic and msg_id): its redelivery is only acknowledged."""

    __tablename__ = "relay_inbound"
    msg_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SealedValue(Base):
    """A value sealed to a consumer's key, found by a keyed hash of (recipient key, kind, value)
    (never the value itself): a restarted relay does not seal each device again."""

    __tablename__ = "relay_sealed"
    lookup: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(100), index=True)  # the recipient key it opens with
    sealed: Mapped[str] = mapped_column(Text)
