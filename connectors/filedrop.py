"""The file-drop connector family: vendor exports dropped in a folder.

A source's folder has `incoming/`, `processing/`, `processed/` and `failed/`. The vendor
writes a file under a temporary name (`*.tmp`, `*.part`, or a dot-file) and renames it
into `incoming/` when it is complete: a rename within one file system is atomic, so a
file we see under its final name is whole. (A half-written file that a vendor names
finally anyway is caught as truncated.) We claim a file by renaming it into
`processing/`, read it, and move it to `processed/` or, with a `.reason.txt` beside it,
to `failed/`. The export names residents, mobiles and card numbers, so with a sealer (the
runner always hands one) it never stays in clear: it is kept only sealed, `NAME.sealed`
(AES-GCM under a key from the master secret), in the hub-only (0700) `processed/` and
`failed/`, until retention deletes it (docs/privacy-lifecycle.md); the ledger outlives it.

Every file is recorded by SHA-256 in a ledger the runner hands the family (`DropLedger`; the
control database's `drop_files` table, warehouse/drop_ledger.py):
the same bytes are never loaded twice, whatever their name. An accepted file is tied to
the window that claimed it; a re-run of that window reads it again from `processed/`,
so re-running a window gives the same rows (it opens the sealed copy; once retention has
deleted that, the re-run fails with a reason instead of loading an empty window). One run
per source at a time (the ingest DAG's max_active_runs=1).
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
from kernel.errors import FatalError
from kernel.private import private_dir, write_private
from kernel.settings import FileDropSource

log = logging.getLogger(__name__)

INCOMPLETE_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")
FOLDERS = ("incoming", "processing", "processed", "failed")
HUB_FOLDERS = ("processing", "processed", "failed")  # the vendor writes incoming/ only
SEALED_SUFFIX = ".sealed"


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


class DropSealer(Protocol):
    """Encrypts a raw file at rest; `label` (source and checksum) is bound to the ciphertext."""

    def seal(self, data: bytes, label: str) -> bytes: ...

    def open(self, blob: bytes, label: str) -> bytes: ...


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
        sealer: DropSealer | None = None,
    ):
        self.folder, self.source, self.ledger, self.suffixes = folder, source, ledger, suffixes
        self.max_bytes, self.sealer = max_bytes, sealer
        (folder / "incoming").mkdir(parents=True, exist_ok=True)
        for sub in HUB_FOLDERS:
            private_dir(folder / sub, restrict=True)

    def _label(self, sha: str) -> str:
        return f"{self.source}/{sha}"

    def read_stored(self, entry: LedgerEntry) -> bytes | Path:
        """An accepted file as the vendor sent it: its bytes (opened) if sealed, else its path."""
        path = self.folder / entry.stored_as
        if not path.exists():
            raise FatalError(
                f"{self.source}: {entry.file_name}, taken by this window, is no longer kept "
                "(retention deleted it); the window cannot be read again"
            )
        if not entry.stored_as.endswith(SEALED_SUFFIX):
            return path
        if self.sealer is None:
            raise FatalError(f"{self.source}: {entry.file_name} is sealed and no sealer was given")
        return self.sealer.open(path.read_bytes(), self._label(entry.sha256))

    def _keep(self, claimed: Path, stored: str, sha: str) -> bytes | None:
        """Move the claimed file to `stored`: sealed (the clear copy deleted; its bytes returned,
        to be read from memory) or as it is (None: read it from where it now is)."""
        if stored.endswith(SEALED_SUFFIX) and self.sealer is not None:
            data = claimed.read_bytes()
            write_private(self.folder / stored, self.sealer.seal(data, self._label(sha)))
            claimed.unlink()
            return data
        os.replace(claimed, self.folder / stored)
        return None

    def collect(self, since: datetime, until: datetime, required: set[str]) -> Iterator[DroppedFile]:
        """The window's files: those it claimed before (a re-run), then every new complete file."""
        self._recover()
        for entry in self.ledger.claimed(self.source, since, until):
            table = read_drop_file(entry.file_name, self.read_stored(entry), required, self.max_bytes)
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
        kept = self._keep(claimed, stored, sha)
        log.info("%s: accepted %s (%d rows, %s)", self.source, path.name, len(table.rows), table.encoding)
        table = (
            read_drop_file(path.name, kept, required, self.max_bytes) if kept else table.moved_to(self.folder / stored)
        )
        return DroppedFile(path.name, sha, table.encoding, table)

    def _fail(self, claimed: Path, sha: str, reason: str, record: bool = False) -> None:
        stored = self._destination("failed", claimed.name, sha)
        if record:
            self.ledger.record(LedgerEntry(self.source, sha, claimed.name, stored, status="failed", reason=reason))
        # The note names the file and the reason (never a value); it stays readable beside the sealed copy.
        note = self.folder / (stored.removesuffix(SEALED_SUFFIX) + ".reason.txt")
        write_private(note, f"{claimed.name}\nsha256 {sha}\n{utcnow().isoformat()}\n{reason}\n".encode())
        self._keep(claimed, stored, sha)
        log.warning("%s: %s moved to failed/: %s", self.source, claimed.name, reason)

    def _destination(self, folder: str, name: str, sha: str) -> str:
        """failed/NAME or processed/NAME (+ .sealed); the checksum joins the name if that is taken."""
        sealed = SEALED_SUFFIX if self.sealer is not None else ""
        stored = f"{folder}/{name}{sealed}"
        if (self.folder / stored).exists():
            stem, dot, suffix = name.rpartition(".")
            unique = f"{stem}.{sha[:12]}{dot}{suffix}" if dot else f"{name}.{sha[:12]}"
            stored = f"{folder}/{unique}{sealed}"
        return stored

    def kept_files(self) -> list[Path]:
        """Every file kept in processed/ and failed/ (the vendor's exports, sealed or not yet)."""
        return sorted(
            p
            for sub in ("processed", "failed")
            for p in (self.folder / sub).iterdir()
            if p.is_file() and not p.name.endswith((".reason.txt", ".tmp"))
        )

    def seal_clear_files(self) -> list[str]:
        """Seal what an older hub left in clear in processed/ and failed/, repointing the
        ledger; returns the files sealed (relative to the drop folder)."""
        if self.sealer is None:
            raise FatalError(f"{self.source}: sealing the kept files needs a sealer")
        sealed = []
        for path in self.kept_files():
            if path.name.endswith(SEALED_SUFFIX):
                continue
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            relative = path.relative_to(self.folder).as_posix()
            target = relative + SEALED_SUFFIX
            self._keep(path, target, sha)
            entry = self.ledger.get(self.source, sha)
            if entry is not None and entry.stored_as == relative:
                entry.stored_as = target
                self.ledger.record(entry)
            sealed.append(target)
        return sealed

    def purge_kept(self, before: datetime) -> list[str]:
        """Delete kept files (and their reason notes) written before `before`; the ledger
        keeps their checksums, so the same bytes are still never loaded twice."""
        purged = []
        for path in self.kept_files():
            if datetime.fromtimestamp(path.stat().st_mtime, UTC) < before:
                path.unlink()
                note = path.with_name(path.name.removesuffix(SEALED_SUFFIX) + ".reason.txt")
                note.unlink(missing_ok=True)
                purged.append(path.relative_to(self.folder).as_posix())
        return purged

    def _recover(self) -> None:
        """Finish or undo claims a crashed run left in processing/."""
        for path in sorted((self.folder / "processing").iterdir()):
            sha = _sha256(path)
            entry = self.ledger.get(self.source, sha)
            if entry is not None and entry.status == "accepted":
                if (self.folder / entry.stored_as).exists():
                    path.unlink()  # kept already; the crash came before the clear copy was deleted
                else:
                    self._keep(path, entry.stored_as, sha)
            else:
                os.replace(path, self.folder / "incoming" / path.name)


def _sha256(path: Path) -> str:
    """A file's checksum, read in chunks (a drop may be hundreds of megabytes)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
