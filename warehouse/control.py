"""The control database: cursors, load ledger, consumers and their keys, nonces,
published partitions and the audit log.

SQLAlchemy 2 on SQLite by default (a file under the state folder) or PostgreSQL by
URL. It is transactional and written by many processes (Airflow tasks, the API), unlike
the warehouse, which has one writer. The schema is owned by the Alembic migrations in
`warehouse/migrations`; these models must match them (a test checks it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from kernel.private import create_private_file, private_dir


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the API read while a pipeline writes; busy_timeout makes writers queue
    # instead of failing at once, since Airflow tasks and the API share the file.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


@lru_cache(maxsize=16)
def engine_for(url: str) -> Engine:
    """One engine per database URL per process."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.name != ":memory:":
            # Created 0600 in a 0700 folder before SQLite opens it: its -wal/-shm files take its mode.
            private_dir(path.parent)
            create_private_file(path)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    factory = sessionmaker(engine_for(url), expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
