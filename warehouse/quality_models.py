"""The kept results of every batch's validation, in the control database.

One `BatchQuality` row per batch (a stream's window for one community), with the Great
Expectations outcome of each expectation and the quarantined row counts by reason as child
rows. The validate stage writes them in the same transaction as the load ledger; a re-run
of a batch replaces its rows. Only names and counts are kept, never a value: GX's own
result lists the unexpected values, and they may be plates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, delete
from sqlalchemy.orm import Mapped, Session, mapped_column

from warehouse.control import Base, LoadRecord, UTCDateTime, utcnow


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


def keep_batch_quality(
    session: Session, record: LoadRecord, suite: str, summary: dict[str, Any], at: datetime | None = None
) -> BatchQuality:
    """Keep what validating `record`'s batch found (the validate stage's summary), replacing an
    earlier run of the same batch: a re-run never adds a second quality row."""
    batch_id = record.batch_id
    for model in (ExpectationResult, QuarantineCount, BatchQuality):
        session.execute(delete(model).where(model.batch_id == batch_id))
    expectations = summary.get("expectations") or []
    kept = BatchQuality(
        batch_id=batch_id,
        stream=record.stream,
        community_id=record.community_id,
        window_start=record.window_start,
        window_end=record.window_end,
        suite=suite,
        rows_in=summary["rows_in"],
        rows_loaded=0 if summary["rejected"] else summary["rows_good"],
        rows_quarantined=summary["rows_quarantined"],
        duplicates_dropped=summary.get("duplicates_dropped", 0),
        gx_success=all(e["success"] for e in expectations) if expectations else None,
        rejected=bool(summary["rejected"]),
        schema_drift="; ".join(summary.get("schema_drift") or []) or None,
        validated_at=at or utcnow(),
    )
    session.add(kept)
    session.flush()  # the parent row first: the children refer to it
    for position, e in enumerate(expectations):
        session.add(
            ExpectationResult(
                batch_id=batch_id,
                position=position,
                expectation=e["expectation"],
                column=e["column"],
                success=bool(e["success"]),
                unexpected=int(e["unexpected"]),
            )
        )
    reasons = sorted((summary.get("quarantined_by_reason") or {}).items())
    for position, (reason, rows) in enumerate(reasons):
        session.add(QuarantineCount(batch_id=batch_id, position=position, reason=reason, rows=int(rows)))
    return kept
