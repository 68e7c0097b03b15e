"""The file-drop connector family: vendor exports dropped in a folder.

A source's folder has `incoming/`, `processing/`, `processed/` and `failed/`. The vendor
writes a file under a temporary name (`*.tmp`, `*.part`, or a dot-file) and renames it
into `incoming/` when it is complete: a rename within one file system is atomic, so a
file we see under its final name is whole. (A half-written file that a vendor names
finally anyway is caught as truncated.) We claim a file by renaming it into
`processing/`, read it, and move it to `processed/` or, with a `.reason.txt` beside it,
to `failed/`.

Every file is recorded by SHA-256 in a ledger the runner hands the family (`DropLedger`; the
control database's `drop_files` table, warehouse/drop_ledger.py):
the same bytes are never loaded twice, whatever their name. An accepted file is tied to
the window that claimed it; a re-run of that window reads it again from `processed/`,
so re-running a window gives the same rows. One run per source at a time (the ingest
DAG's max_active_runs=1).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from connectors.filedrop_read import DropFileError, DropTable, read_drop_file
from kernel.settings import FileDropSource

log = logging.getLogger(__name__)

INCOMPLETE_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")
FOLDERS = ("incoming", "processing", "processed", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class LedgerEntry:
    """One dropped file as the ledger keeps it: where it went, how it was decoded, which window took it."""

    source: str
    sha256: str
    file_name: str
    stored_as: str  # relative to the drop folder
    status: str  # accepted | failed
    encoding: str | None = None
    rows: int = 0
    reason: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    received_at: datetime = field(default_factory=utcnow)


class DropLedger(Protocol):
    """Where a drop folder's files are recorded by checksum; the runner hands it to the family."""

    def claimed(self, source: str, since: datetime, until: datetime) -> list[LedgerEntry]:
        """The files accepted for the window [since, until), in the order they were received."""
        ...

    def get(self, source: str, sha256: str) -> LedgerEntry | None: ...

    def record(self, entry: LedgerEntry) -> None:
        """Insert or replace the entry of (source, sha256)."""
        ...


# Declared with the hub's settings (kernel/settings.py); re-exported for the family's users.
__all__ = ["FileDropSource"]


@dataclass
class DroppedFile:
    """An accepted file's ledger facts and its parsed content."""

    name: str
    sha256: str
    encoding: str
    table: DropTable


class FileDrop:
    """One source's drop folder and its ledger."""

    def __init__(
        self,
        folder: Path,
        source: str,
        ledger: DropLedger,
        suffixes: tuple[str, ...] = (".csv", ".xlsx"),
        max_bytes: int | None = None,
    ):
        self.folder, self.source, self.ledger, self.suffixes = folder, source, ledger, suffixes
        self.max_bytes = max_bytes
        for sub in FOLDERS:
            (folder / sub).mkdir(parents=True, exist_ok=True)

    def collect(self, since: datetime, until: datetime, required: set[str]) -> Iterator[DroppedFile]:
        """The window's files: those it claimed before (a re-run), then every new complete file."""
        self._recover()
        for entry in self.ledger.claimed(self.source, since, until):
            path = self.folder / entry.stored_as
            table = read_drop_file(entry.file_name, path, required, self.max_bytes)
            yield DroppedFile(entry.file_name, entry.sha256, entry.encoding or "", table)
        for path in self.complete_files():
            dropped = self._take(path, since, until, required)
            if dropped is not None:
                yield dropped

    def complete_files(self) -> list[Path]:
        """Files in incoming/ under their final names, oldest name first."""
        return sorted(
            p
            for p in (self.folder / "incoming").iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and not p.name.lower().endswith(INCOMPLETE_SUFFIXES)
            and p.name.lower().endswith(self.suffixes)
        )

    def _take(self, path: Path, since: datetime, until: datetime, required: set[str]) -> DroppedFile | None:
        claimed = self.folder / "processing" / path.name
        try:
            os.rename(path, claimed)
        except FileNotFoundError:  # another reader took it first
            return None
        sha = _sha256(claimed)
        before = self.ledger.get(self.source, sha)
        if before is not None and before.status == "accepted":
            when = before.received_at.date().isoformat()
            self._fail(claimed, sha, f"duplicate: the same bytes were loaded as {before.file_name} on {when}")
            return None
        try:
            table = read_drop_file(path.name, claimed, required, self.max_bytes)
        except DropFileError as exc:
            self._fail(claimed, sha, str(exc), record=True)
            return None
        stored = self._destination("processed", path.name, sha)
        self.ledger.record(
            LedgerEntry(
                source=self.source,
                sha256=sha,
                file_name=path.name,
                stored_as=stored,
                status="accepted",
                encoding=table.encoding,
                rows=len(table.rows),
                window_start=since,
                window_end=until,
            )
        )
        # Recorded first, moved second: a crash between the two is finished by _recover().
        os.replace(claimed, self.folder / stored)
        log.info("%s: accepted %s (%d rows, %s)", self.source, path.name, len(table.rows), table.encoding)
        return DroppedFile(path.name, sha, table.encoding, table.moved_to(self.folder / stored))

    def _fail(self, claimed: Path, sha: str, reason: str, record: bool = False) -> None:
        stored = self._destination("failed", claimed.name, sha)
        if record:
            self.ledger.record(LedgerEntry(self.source, sha, claimed.name, stored, status="failed", reason=reason))
        note = self.folder / (stored + ".reason.txt")
        note.write_text(f"{claimed.name}\nsha256 {sha}\n{utcnow().isoformat()}\n{reason}\n", encoding="utf-8")
        os.replace(claimed, self.folder / stored)
        log.warning("%s: %s moved to failed/: %s", self.source, claimed.name, reason)

    def _destination(self, folder: str, name: str, sha: str) -> str:
        """failed/NAME or processed/NAME; the checksum joins the name if that is taken."""
        stored = f"{folder}/{name}"
        if (self.folder / stored).exists():
            stem, dot, suffix = name.rpartition(".")
            stored = f"{folder}/{stem}.{sha[:12]}{dot}{suffix}" if dot else f"{folder}/{name}.{sha[:12]}"
        return stored

    def _recover(self) -> None:
        """Finish or undo claims a crashed run left in processing/."""
        for path in sorted((self.folder / "processing").iterdir()):
            sha = _sha256(path)
            entry = self.ledger.get(self.source, sha)
            target = entry.stored_as if entry is not None and entry.status == "accepted" else None
            os.replace(path, self.folder / target if target else self.folder / "incoming" / path.name)


def _sha256(path: Path) -> str:
    """A file's checksum, read in chunks (a drop may be hundreds of megabytes)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
