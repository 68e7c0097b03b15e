"""Files only the hub's own user may read: folders 0700, files 0600.

The hub's state (control database, DuckDB warehouse, keys, vault, work files, sealed drop
files) holds pseudonyms, keys or raw data; nobody else on the machine has a reason to read
it. Processes the hub starts run under `restrict_process()` (umask 077) so anything they
create is private; the stores also set the modes explicitly where they create their files,
because library callers (tests, other tools) may not have set the umask.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def restrict_process() -> None:
    """Everything this process (and its children) creates is private to the hub's user."""
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path, restrict: bool = False) -> Path:
    """Make `path` (and missing parents) 0700; with `restrict`, also an existing folder
    (only for the hub's own folders: never chmod a folder a user pointed a file into)."""
    existed = path.is_dir()
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):  # mkdir(parents=True) would give the parents the umask's mode
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
        os.chmod(folder, DIR_MODE)
    if restrict and existed and path.stat().st_mode & 0o077:
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Restrict an existing file to its owner (a missing one is left missing)."""
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_mode & 0o077:
            os.chmod(path, FILE_MODE)
    return path


def create_private_file(path: Path) -> Path:
    """An empty file created 0600 if it does not exist yet, so whatever fills it is never
    readable by others, not even for a moment (SQLite gives its -wal/-shm files the same mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    return private_file(path)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, 0600 from the first byte."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
