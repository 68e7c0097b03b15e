"""One committer per table: a PostgreSQL advisory lock where the catalog is PostgreSQL (it holds
across machines), else an exclusive lock on a file under the district's home. Both die with
the process that holds them, so a committer killed mid-commit never leaves a table locked."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from district.config import DistrictSettings
from kernel.errors import RetriableError

POLL_SECONDS = 0.05


def lock_number(name: str) -> int:
    """A stable signed 64-bit number for a table's advisory lock."""
    return int.from_bytes(hashlib.sha256(f"neuron-district:{name}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def committer_lock(settings: DistrictSettings, name: str) -> Iterator[None]:
    """Hold the table's committer lock for the block; RetriableError after `lock_timeout_seconds`."""
    if settings.catalog_url.startswith("postgresql"):
        with _advisory_lock(settings, name):
            yield
    else:
        with _file_lock(settings, name):
            yield


@contextmanager
def _file_lock(settings: DistrictSettings, name: str) -> Iterator[None]:
    folder = settings.home_path / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + settings.lock_timeout_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RetriableError(f"another committer holds table {name}; try again later") from None
                time.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # closing releases the lock


_ENGINES: dict[str, object] = {}


@contextmanager
def _advisory_lock(settings: DistrictSettings, name: str) -> Iterator[None]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import Engine

    url = settings.catalog_url
    engine = _ENGINES.get(url)
    if engine is None:
        engine = _ENGINES[url] = create_engine(url, pool_size=2)
    assert isinstance(engine, Engine)
    number = lock_number(name)
    with engine.connect() as connection:
        deadline = time.monotonic() + settings.lock_timeout_seconds
        while not connection.execute(text("SELECT pg_try_advisory_lock(:n)"), {"n": number}).scalar():
            if time.monotonic() > deadline:
                raise RetriableError(f"another committer holds table {name}; try again later")
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:n)"), {"n": number})
            connection.commit()
