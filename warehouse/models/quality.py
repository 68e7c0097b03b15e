"""Kept validation results per batch (names and counts, never a value)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.models.base import Base, UTCDateTime, utcnow


class BatchQuality(Base):
    """What validating one batch found: rows in, loaded, quarantined; whether the GX suite passed."""

    __tablename__ = "quality_batches"
    __table_args__ = (Index("ix_quality_batches_stream_window", "stream", "community_id", "window_end"),)
    batch_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    stream: Mapped[str] = mapped_column(String(100))
    community_id: Mapped[str] = mapped_column(String(100))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    suite: Mapped[str] = mapped_column(String(200))  # the GX suite: "<stream>.v<contract version>"
    rows_in: Mapped[int] = mapped_column(Integer)  # as extracted, before casting and de-duplication
    rows_loaded: Mapped[int] = mapped_column(Integer)  # handed to staging (0 when the batch is rejected)
    rows_quarantined: Mapped[int] = mapped_column(Integer)
    duplicates_dropped: Mapped[int] = mapped_column(Integer)
    # None: the suite did not run (no row survived casting and de-duplication).
    gx_success: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    rejected: Mapped[bool] = mapped_column(Boolean)  # over the failure budget, or drift under a frozen contract
    schema_drift: Mapped[str | None] = mapped_column(Text, nullable=True)  # unexpected field names, "; "-joined
    validated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExpectationResult(Base):
    """One expectation of the batch's GX suite: did it pass, and on how many rows not."""

    __tablename__ = "quality_expectations"
    batch_id: Mapped[str] = mapped_column(ForeignKey("quality_batches.batch_id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # order in the suite
    expectation: Mapped[str] = mapped_column(String(100))  # e.g. expect_column_values_to_match_regex
    column: Mapped[str] = mapped_column(String(500))  # a column, or a compound key's columns comma-joined
    success: Mapped[bool] = mapped_column(Boolean)
    unexpected: Mapped[int] = mapped_column(Integer)


class QuarantineCount(Base):
    """How many of the batch's rows went to quarantine for one reason."""

    __tablename__ = "quality_reasons"
    batch_id: Mapped[str] = mapped_column(ForeignKey("quality_batches.batch_id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)  # names the field and the rule, never the value
    rows: Mapped[int] = mapped_column(Integer)
