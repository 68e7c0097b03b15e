"""Where each source stands: cursors, the load ledger, the file-drop ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.models.base import Base, UTCDateTime, utcnow


class Cursor(Base):
    """How far a stream has been loaded for one community; advanced only after a load commits."""

    __tablename__ = "cursors"
    stream: Mapped[str] = mapped_column(String(100), primary_key=True)
    community_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoadRecord(Base):
    """One batch (a stream's window for one community) through the pipeline stages."""

    __tablename__ = "load_ledger"
    batch_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    stream: Mapped[str] = mapped_column(String(100), index=True)
    community_id: Mapped[str] = mapped_column(String(100))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))  # extracted | validated | loaded | rejected
    rows_extracted: Mapped[int] = mapped_column(Integer, default=0)
    rows_loaded: Mapped[int] = mapped_column(Integer, default=0)
    rows_quarantined: Mapped[int] = mapped_column(Integer, default=0)
    vault_object: Mapped[str | None] = mapped_column(String(500), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DropFile(Base):
    """One dropped file: where it went, how it was decoded, and which window took it."""

    __tablename__ = "drop_files"
    __table_args__ = (Index("ix_drop_files_window", "source", "window_start", "window_end"),)
    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    file_name: Mapped[str] = mapped_column(String(500))
    stored_as: Mapped[str] = mapped_column(String(500))  # relative to the drop folder
    status: Mapped[str] = mapped_column(String(20))  # accepted | failed
    encoding: Mapped[str | None] = mapped_column(String(100), nullable=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
