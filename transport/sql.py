"""Read-only SQL engines: the SQL connector family and the relay's register of rooms both read
databases they must never write to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from kernel.errors import ConfigError


def read_only_engine(url: str, timeout_seconds: float = 30.0) -> Engine:
    """An engine whose connections cannot write, on SQLite, PostgreSQL or MariaDB/MySQL."""
    if not url:
        raise ConfigError("SQL source: no database URL configured")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("SQL source: the database URL cannot be parsed") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:":
            raise ConfigError("SQL source: a read-only SQLite source needs a file")
        ro = parsed.set(database=f"file:{database}", query={**parsed.query, "mode": "ro", "uri": "true"})
        engine = create_engine(ro, connect_args={"timeout": timeout_seconds})
        # query_only as well: mode=ro alone still lets a connection create temp objects.
        event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA query_only = ON"))
        return engine
    if backend == "postgresql":
        options = f"-c default_transaction_read_only=on -c statement_timeout={int(timeout_seconds * 1000)}"
        return create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"options": options, "connect_timeout": max(1, int(timeout_seconds))},
            isolation_level="REPEATABLE READ",
        )
    if backend in ("mysql", "mariadb"):
        engine = create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"read_timeout": max(1, int(timeout_seconds)), "connect_timeout": 10, "charset": "utf8mb4"},
            isolation_level="REPEATABLE READ",
        )
        event.listen(engine, "connect", _mysql_read_only)
        return engine
    raise ConfigError(f"SQL source: unsupported database backend {backend!r}")


def _mysql_read_only(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("SET SESSION TRANSACTION READ ONLY")
    cursor.close()
