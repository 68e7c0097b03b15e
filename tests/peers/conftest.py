"""A control database migrated once per session, copied for each test (a migration costs ~0.5 s)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from warehouse.migrations import migrate


@pytest.fixture(scope="session")
def control_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("control-template") / "control.db"
    migrate(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:  # the control DB runs in WAL mode: fold the log into the file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def migrated_control(control_template: Path, tmp_path: Path) -> str:
    """The URL of a freshly migrated control database of this test's own."""
    target = tmp_path / "var" / "control.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(control_template, target)
    return f"sqlite:///{target}"
