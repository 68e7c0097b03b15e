"""The lake's files and the control database's records of them, kept in step.

A partition becomes visible only after it is recorded and audited: the publisher writes its
Parquet file and manifest under hidden temporary names (`.v3.parquet.tmp`), records the
partition and its audit entry in one transaction, and only then renames the files into
place. So a failure before the commit (a read-only database, a full disk) leaves no visible
file, and `reconcile_lake`, run before every publish, finishes or undoes what a crash
between the commit and the rename left behind. `lake_problems` is what `neuron audit
verify` adds to the hash chain's check: every file in the lake has its record (and the same
SHA-256) and its audit entry.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from kernel.errors import FatalError
from kernel.private import private_dir
from kernel.settings import Settings
from warehouse.audit import append_audit, dump_detail
from warehouse.control import session_scope
from warehouse.models import AuditEntry, Partition

log = logging.getLogger(__name__)

TMP_PREFIX = "."
TMP_SUFFIX = ".tmp"
STALE_SECONDS = 600  # an unrecorded hidden file older than this belongs to no running publish


def hidden(path: Path) -> Path:
    """Where a file is written before it is recorded: a dot-file no reader lists."""
    return path.with_name(f"{TMP_PREFIX}{path.name}{TMP_SUFFIX}")


def manifest_of(parquet: Path) -> Path:
    return parquet.with_name(parquet.name.removesuffix(".parquet") + ".manifest.jws")


def write_hidden(path: Path, data: bytes) -> Path:
    """Write `data` durably under `path`'s hidden name; nothing is left behind on failure."""
    tmp = hidden(path)
    try:
        # The hub serves the lake itself (the export API): nobody else on the machine reads it.
        private_dir(path.parent)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise lake_error("cannot write a partition", exc) from None
    return tmp


def reveal(path: Path) -> None:
    """Rename a recorded file's hidden copy into place (atomic within the lake's file system)."""
    try:
        os.replace(hidden(path), path)
    except OSError as exc:
        raise lake_error("cannot move a recorded partition into place", exc) from None


def lake_error(what: str, exc: OSError) -> FatalError:
    """One line for a lake failure: what, and the errno's words (never a path or data)."""
    reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    hint = {errno.ENOSPC: "free space in the lake", errno.EACCES: "check the lake folder's owner and mode"}
    extra = f"; {hint[exc.errno]}" if exc.errno in hint else ""
    return FatalError(f"lake: {what} ({reason}{extra})")


def control_error(what: str, exc: SQLAlchemyError) -> FatalError:
    """One line for a control-database failure: never SQLAlchemy's text, which quotes the
    statement and its parameters."""
    original = getattr(exc, "orig", None)
    # Even a driver's first line may quote a value (PostgreSQL's "invalid input syntax ..."):
    # only the kind of failure is named, and a read-only database, the common case, in words.
    text = str(original).lower() if original is not None else ""
    kind = type(original).__name__ if original is not None else type(exc).__name__
    words = "the database is read-only" if "readonly" in text or "read-only" in text else kind
    return FatalError(f"control database: {what} ({words})")


@dataclass
class Reconciled:
    revealed: int = 0  # recorded files a crash left hidden: moved into place
    removed: int = 0  # files with no record: removed (and audited)


def reconcile_lake(settings: Settings) -> Reconciled:
    """Finish or undo what an interrupted publish left in the lake (see the module doc)."""
    root = settings.lake_path
    done = Reconciled()
    if not root.exists():
        return done
    with session_scope(settings.control_url) as session:
        recorded = {p.path: p for p in session.scalars(select(Partition))}
        manifests = {Path(p.path).with_name(Path(p.path).name.removesuffix(".parquet") + ".manifest.jws").as_posix(): p
                     for p in recorded.values()}  # fmt: skip
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            relative = path.relative_to(root)
            name = relative.name
            if name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX):
                final = relative.with_name(name[len(TMP_PREFIX) : -len(TMP_SUFFIX)]).as_posix()
                record = recorded.get(final) or manifests.get(final)
                if record is not None and not (root / final).exists():
                    os.replace(path, root / final)  # committed, then interrupted before the rename
                    done.revealed += 1
                elif record is not None or time.time() - path.stat().st_mtime > STALE_SECONDS:
                    # Never committed: a publish that failed. A young one may be another
                    # process's publish still on its way to its commit: it is left alone.
                    path.unlink()
                continue
            key = relative.as_posix()
            if key in recorded or key in manifests:
                continue
            # A visible file with no record (written by an older hub before its commit failed):
            # it was never published, so it goes, and the removal is in the audit log.
            path.unlink()
            done.removed += 1
            append_audit(session, actor="hub", action="reconcile", outcome="removed", detail={"file": key})
            log.warning("lake: removed %s, which had no publication record", key)
    return done


def lake_problems(settings: Settings) -> list[str]:
    """Files in the lake without their record, with another SHA-256, or without an audit entry."""
    root = settings.lake_path
    if not root.exists():
        return []
    problems = []
    with session_scope(settings.control_url) as session:
        recorded = {p.path: p for p in session.scalars(select(Partition))}
        audited = set()
        for entry in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "publish", AuditEntry.outcome == "published")
        ):
            detail = dump_detail(entry.detail) or {}
            audited.add((entry.feed, detail.get("consumer"), detail.get("partition"), detail.get("version")))
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            key = path.relative_to(root).as_posix()
            if path.name.startswith(TMP_PREFIX) and path.name.endswith(TMP_SUFFIX):
                problems.append(f"lake file {key} is an unfinished publication (the next publish settles it)")
                continue
            if path.name.endswith(".manifest.jws"):
                parquet = key.removesuffix(".manifest.jws") + ".parquet"
                if parquet not in recorded:
                    problems.append(f"lake file {key} has no publication record")
                continue
            record = recorded.get(key)
            if record is None:
                problems.append(f"lake file {key} has no publication record")
                continue
            with path.open("rb") as f:
                if hashlib.file_digest(f, "sha256").hexdigest() != record.sha256:
                    problems.append(f"lake file {key} differs from its record (SHA-256)")
            if (record.feed, record.consumer, record.partition_key, record.version) not in audited:
                problems.append(f"lake file {key} has no audit entry")
        for key in sorted(recorded):
            for expected in (root / key, manifest_of(root / key)):
                if not expected.is_file():
                    missing = expected.relative_to(root).as_posix()
                    problems.append(f"partition file {missing} is recorded but missing from the lake")
    return problems
