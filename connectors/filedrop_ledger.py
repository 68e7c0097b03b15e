"""The file-drop ledger in the control database: every dropped file by its SHA-256.

A file's checksum is its identity, whatever it is called: the same bytes dropped again
(under the same or another name) are never loaded twice. Each accepted file names the
window that claimed it, so a re-run of that window reads the same files again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.control import Base, UTCDateTime, utcnow


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
