"""The NGSI-LD push's control-database tables: where each consumer's feeds stand, which temporal
instances were sent, and the entities its broker would not take (the dead letters).

Declared here with the store's other tables (migration 0010); peers/ngsi_ld reads and writes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.models.base import Base, UTCDateTime, utcnow


class NgsiLdCursor(Base):
    """How far a consumer's published partitions of a feed have been pushed (the pull API's
    cursor: publications before `seq` done, `offset` rows of `seq` done)."""

    __tablename__ = "ngsi_ld_cursors"
    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    feed: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    offset: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NgsiLdSentInstance(Base):
    """A temporal instance written to a consumer's broker: brokers keep duplicates
    (Orion-LD #1518), so the hub never writes the same (entity, attribute, datasetId,
    observedAt) twice. `confirmed` is false from just before the request until the broker's
    answer: an unconfirmed instance may be stored already, and is looked up before a resend."""

    __tablename__ = "ngsi_ld_sent_instances"
    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    attribute: Mapped[str] = mapped_column(String(100), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(300), primary_key=True)  # "" for the default instance
    observed_at: Mapped[str] = mapped_column(String(40), primary_key=True)  # as sent (UTC, Z)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NgsiLdDeadLetter(Base):
    """An entity (or a temporal write) a consumer's broker refused or kept failing: shown in
    the console, with the error's type and status (never a value), kept until resolved."""

    __tablename__ = "ngsi_ld_dead_letters"
    __table_args__ = (Index("ix_ngsi_ld_dead_letters_consumer_open", "consumer", "resolved_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))  # upsert | alert | temporal
    feed: Mapped[str | None] = mapped_column(String(100), nullable=True)
    entity_id: Mapped[str] = mapped_column(String(300))
    entity_type: Mapped[str] = mapped_column(String(100))
    error_type: Mapped[str] = mapped_column(String(100))  # ProblemDetails type, short (BadRequestData)
    status: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))  # the broker's title, which names no value of ours
    attempts: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)  # the entity as rendered under the policy, for a re-drive
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # An admin asked, in the console, for a re-send; `neuron push` does it at its next round.
    resend_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
