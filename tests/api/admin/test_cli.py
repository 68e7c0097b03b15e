"""`neuron admins add|list|disable`: the password is prompted for and stored only as argon2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.admin.accounts import Lockout, check_password
from kernel.settings import load_settings
from neuron.cli import app
from warehouse.control import session_scope
from warehouse.models import AdminUser

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("NEURON_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NEURON_HOME", str(tmp_path))
    assert runner.invoke(app, ["init"]).exit_code == 0
    return tmp_path


def test_add_list_disable(home: Path) -> None:
    password = "a long enough password"
    added = runner.invoke(app, ["admins", "add", "erin", "--role", "admin"], input=f"{password}\n{password}\n")
    assert added.exit_code == 0, added.output
    assert password not in added.output
    url = load_settings().control_url
    with session_scope(url) as session:
        stored = session.get(AdminUser, "erin")
        assert stored is not None and stored.password_hash.startswith("$argon2id$")
    from datetime import UTC, datetime

    assert check_password(url, "erin", password, datetime.now(UTC), Lockout()) is not None
    listed = runner.invoke(app, ["admins", "list"])
    assert "erin" in listed.output and "admin" in listed.output
    assert runner.invoke(app, ["admins", "disable", "erin"]).exit_code == 0
    assert check_password(url, "erin", password, datetime.now(UTC), Lockout()) is None


def test_bad_role_short_password_and_unknown_account_fail_cleanly(home: Path) -> None:
    weak = runner.invoke(app, ["admins", "add", "frank", "--role", "admin"], input="short\nshort\n")
    assert weak.exit_code == 1 and "at least" in weak.output
    role = runner.invoke(app, ["admins", "add", "frank", "--role", "root"], input="x" * 12 + "\n" + "x" * 12 + "\n")
    assert role.exit_code == 1 and "role" in role.output
    assert runner.invoke(app, ["admins", "disable", "nobody"]).exit_code == 1
