"""Reaching this machine's services from tests: skip with a reason where they are absent,
except on CI (NEURON_REQUIRE_SERVICES=1), where a missing service is a failure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from kernel.settings import REPO_ROOT

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
    if not reachable(port):
        missing(f"{name} is not running on 127.0.0.1:{port}")


def missing(message: str) -> None:
    """Skip with `message`, or fail on CI, where every service must be there."""
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


class ServiceProcess:
    """One of the hub's services (`python -m MODULE`) as a child process of the test, with a
    private hub's environment, killable with SIGKILL: the collector, the relay, the inbox."""

    def __init__(
        self,
        hub: Any,
        module: str,
        sections: dict[str, str],
        ready: str | Callable[[], bool] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.env = {
            **os.environ,
            "NEURON_HOME": str(hub.home),
            "NEURON_STATE_DIR": "var",
            "NEURON_COMMUNITY_ID": hub.community_id,
            **{f"NEURON_{name.upper()}": value for name, value in sections.items()},
        }
        self.module, self.ready, self.args = module, ready, args
        self.log = hub.home / f"{'_'.join([module.replace('.', '_'), *args])}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it; with `ready`, wait until its log says that line once more than before (or,
        given a function, until it answers true)."""
        ready = self.ready
        mark = self.log.read_text().count(ready) if isinstance(ready, str) and self.log.exists() else 0
        with open(self.log, "ab") as log:
            command = [sys.executable, "-m", self.module, *self.args]
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while ready is not None and not (ready() if callable(ready) else self.log.read_text().count(ready) > mark):
            assert time.monotonic() < deadline, f"{self.module} did not start: " + self.log.read_text()[-2000:]
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)
