"""The file-drop ledger in the control database: every dropped file by its SHA-256.

A file's checksum is its identity, whatever it is called: the same bytes dropped again
(under the same or another name) are never loaded twice. Each accepted file names the
window that claimed it, so a re-run of that window reads the same files again. The
file-drop family (connectors/filedrop.py) sees it only as a `DropLedger`.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from sqlalchemy import select

from connectors.filedrop import LedgerEntry
from warehouse.control import session_scope
from warehouse.models import DropFile

_COLUMNS = [f.name for f in fields(LedgerEntry)]


def _entry(row: DropFile) -> LedgerEntry:
    return LedgerEntry(**{name: getattr(row, name) for name in _COLUMNS})


class ControlDropLedger:
    """The `drop_files` table of one control database."""

    def __init__(self, control_url: str):
        self.control_url = control_url

    def claimed(self, source: str, since: datetime, until: datetime) -> list[LedgerEntry]:
        with session_scope(self.control_url) as session:
            rows = session.scalars(
                select(DropFile)
                .where(DropFile.source == source, DropFile.status == "accepted")
                .where(DropFile.window_start == since, DropFile.window_end == until)
                .order_by(DropFile.received_at, DropFile.file_name)
            ).all()
            return [_entry(row) for row in rows]

    def get(self, source: str, sha256: str) -> LedgerEntry | None:
        with session_scope(self.control_url) as session:
            row = session.get(DropFile, (source, sha256))
            return None if row is None else _entry(row)

    def record(self, entry: LedgerEntry) -> None:
        with session_scope(self.control_url) as session:
            session.merge(DropFile(**{name: getattr(entry, name) for name in _COLUMNS}))
