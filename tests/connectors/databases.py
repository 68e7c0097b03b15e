"""Empty databases for one test on each engine the SQL family supports: a SQLite file,
this machine's MariaDB and PostgreSQL (skipped with a reason where absent, failed on CI)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.services import require, temporary_postgres_database

MARIADB_PORT = 3306


@contextmanager
def temporary_mariadb_database() -> Iterator[str]:
    """A fresh MariaDB database (root, no password, loopback), dropped afterwards."""
    require(MARIADB_PORT, "MariaDB")
    import pymysql

    name = f"neuron_test_{uuid.uuid4().hex[:12]}"
    admin = pymysql.connect(host="127.0.0.1", port=MARIADB_PORT, user="root", autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        yield f"mysql+pymysql://root@127.0.0.1:{MARIADB_PORT}/{name}?charset=utf8mb4"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@contextmanager
def temporary_database(kind: str, tmp: Path) -> Iterator[str]:
    """An empty database of `kind` (sqlite | mariadb | postgresql); yields its SQLAlchemy URL."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'platform.db'}"
    elif kind == "mariadb":
        with temporary_mariadb_database() as url:
            yield url
    else:
        with temporary_postgres_database() as url:
            yield url


ENGINES = ["sqlite", "mariadb", pytest.param("postgresql", marks=pytest.mark.postgres)]
