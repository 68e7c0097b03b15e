"""Errors anyone can act on (issue 19): every wrong input to the command line ends in one
clear line that says what to do, a non-zero exit code, no traceback, no SQL, no data value,
no secret — and a failed command on an uninitialised hub leaves no file behind."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuron.cli import app

runner = CliRunner()
SECRET = "s3cr3t-master-value-never-shown"


@dataclass(frozen=True)
class Case:
    """A command, the environment it runs in, and a fragment its one-line answer must carry."""

    args: list[str]
    says: str
    env: dict[str, str] = field(default_factory=dict)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("NEURON_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NEURON_HOME", str(tmp_path / "hub"))
    (tmp_path / "hub").mkdir()
    return tmp_path / "hub"


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


UNINITIALISED = [
    ["consumers", "list"],
    ["consumers", "add", "district", "--public-key", "district.pem"],
    ["consumers", "revoke", "district"],
    ["audit", "verify"],
    ["audit", "export", "audit.zip"],
    ["publish"],
    ["ingest", "vehicle_passes"],
    ["retention", "run"],
    ["admins", "list"],
    ["admins", "add", "wang", "--role", "admin"],
    ["admins", "disable", "wang"],
    ["quality"],
    ["keys", "rotate"],
    ["keys", "show"],
    ["serve"],
    ["collect"],
    ["relay"],
]


@pytest.mark.parametrize("args", UNINITIALISED, ids=" ".join)
def test_an_uninitialised_hub_says_run_init_and_makes_nothing(home: Path, args: list[str]) -> None:
    before = _files(home)
    result = runner.invoke(app, args, env={"NEURON_MASTER_SECRET": ""})
    assert_one_clear_line(result, "neuron init")
    assert _files(home) == before  # no empty database, no half-made state folder


def assert_one_clear_line(result: object, says: str) -> None:
    output: str = result.output  # type: ignore[attr-defined]
    exit_code: int = result.exit_code  # type: ignore[attr-defined]
    exception = result.exception  # type: ignore[attr-defined]
    assert exit_code != 0, output
    assert exception is None or isinstance(exception, SystemExit), repr(exception)
    assert "Traceback" not in output and "sqlalche.me" not in output and "[parameters:" not in output
    assert SECRET not in output and "沪A" not in output
    # Rich wraps long lines and draws a box round usage errors: compare the words alone.
    words = " ".join(output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())
    assert says in words, output


@pytest.fixture
def initialised(home: Path) -> Path:
    assert runner.invoke(app, ["init"]).exit_code == 0
    return home


def wrong_inputs(tmp: Path, port: int) -> list[Case]:
    (tmp / "not-a-key.pem").write_text("hello\n")
    (tmp / "bad.toml").write_text('bogus_key = 1\n[parking]\nbase_ur = "http://x"\n')
    (tmp / "typed.toml").write_text('vault_retention_days = "many"\n')
    (tmp / "unknown-section.toml").write_text("[parkng]\ntoken = 'x'\n")
    (tmp / "jwks.json").write_text("{not json")
    key = ["--private-key", str(tmp / "not-a-key.pem")]
    ballot = ["--receipt", "R-1", "--choice", "agree", "--area", "88.5"]
    return [
        Case(["ingest", "nope"], "unknown stream 'nope'"),
        Case(["ingest", "vehicle_passes", "--day", "2026-13-01"], "YYYY-MM-DD"),
        Case(["ingest", "vehicle_passes", "--day", "yesterday"], "YYYY-MM-DD"),
        Case(["publish", "--feed", "nope"], "unknown feed(s) nope"),
        Case(["consumers", "add", "x", "--public-key", str(tmp / "missing.pem")], "does not exist"),
        Case(["consumers", "add", "x", "--public-key", str(tmp / "not-a-key.pem")], "not a PEM public key"),
        Case(["consumers", "revoke", "nobody"], "no consumer 'nobody'"),
        Case(["admins", "disable", "nobody"], "no admin 'nobody'"),
        Case(["pull", "traffic.vehicle_flow_hourly", "--hub", "localhost:8700", *key], "write it with its scheme"),
        Case(["pull", "traffic.vehicle_flow_hourly", "--private-key", str(tmp / "missing.pem")], "does not exist"),
        Case(["pull", "traffic.vehicle_flow_hourly", *key], "not a PEM private key"),
        Case(["verify-ballot", str(tmp / "missing-proof.json"), *ballot], "does not exist"),
        Case(["verify-ballot", str(tmp / "jwks.json"), *ballot], "not a ballot proof"),
        Case(["audit", "verify", "--archive", str(tmp / "missing.zip")], "does not exist"),
        Case(["serve", "--port", str(port)], f"127.0.0.1:{port} is taken"),
        Case(["consumers", "list"], "not a file", {"NEURON_CONFIG": str(tmp / "no-such.toml")}),
        Case(["consumers", "list"], "did you mean parking.base_url", {"NEURON_CONFIG": str(tmp / "bad.toml")}),
        Case(["consumers", "list"], "unknown setting(s): bogus_key", {"NEURON_CONFIG": str(tmp / "bad.toml")}),
        Case(["consumers", "list"], "vault_retention_days", {"NEURON_CONFIG": str(tmp / "typed.toml")}),
        Case(["consumers", "list"], "did you mean parking", {"NEURON_CONFIG": str(tmp / "unknown-section.toml")}),
        Case(["consumers", "list"], "vault_retention_days", {"NEURON_VAULT_RETENTION_DAYS": "-3"}),
        Case(["consumers", "list"], "api.port", {"NEURON_API__PORT": "eighty"}),
    ]


def test_wrong_inputs_get_one_clear_line(initialised: Path, tmp_path: Path, taken_port: int) -> None:
    cases = wrong_inputs(tmp_path, taken_port)
    assert len(UNINITIALISED) + len(cases) >= 30
    for case in cases:
        result = runner.invoke(app, case.args, env={**case.env})
        assert_one_clear_line(result, case.says)
