"""Reaching this machine's services from tests: skip with a reason where they are absent,
except on CI (NEURON_REQUIRE_SERVICES=1), where a missing service is a failure."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def reachable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(port: int, name: str) -> None:
    """Skip (or, on CI, fail) when the service is not there."""
    if reachable(port):
        return
    message = f"{name} is not running on 127.0.0.1:{port}"
    if os.environ.get("NEURON_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (CI requires it)")
    pytest.skip(message)


@contextmanager
def temporary_postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards; yields its SQLAlchemy URL."""
    require(5432, "PostgreSQL")
    import psycopg

    name = f"neuron_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        from warehouse.control import engine_for

        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        engine_for(url).dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
