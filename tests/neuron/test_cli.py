"""The `neuron` command line as an operator and a consumer use it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from api.app import create_app
from api.consumers import key_id_for
from api.transport import tls_options
from kernel.settings import REPO_ROOT, load_settings
from neuron.cli import app
from privacy.keys import HubKeys
from privacy.tls import hub_certificate, jwks_fingerprint
from tests.api.hub import ServerThread

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("NEURON_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NEURON_HOME", str(tmp_path))
    return tmp_path


def test_init_then_consumers_and_keys(home: Path) -> None:
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((home / "var/keys/master.key").stat().st_mode) == 0o600
    assert "kept" in runner.invoke(app, ["init"]).output  # a second init replaces nothing

    private = Ed25519PrivateKey.generate()
    pem = home / "district.pub.pem"
    pem.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    added = runner.invoke(app, ["consumers", "add", "district", "--public-key", str(pem)])
    assert added.exit_code == 0 and "district-" in added.output
    assert "district" in runner.invoke(app, ["consumers", "list"]).output
    unknown = runner.invoke(app, ["consumers", "add", "nobody", "--public-key", str(pem)])
    assert unknown.exit_code == 1 and "error" in unknown.output
    shown = runner.invoke(app, ["keys", "show"]).output
    assert '"kty": "OKP"' in shown and '"jwks_fingerprint": "sha256:' in shown
    assert (home / "var/keys/tls/hub.crt").exists() and "TLS cert" in result.output
    assert runner.invoke(app, ["consumers", "revoke", "district"]).exit_code == 0


def test_commands_before_init_say_what_to_do(home: Path) -> None:
    result = runner.invoke(app, ["keys", "show"])
    assert result.exit_code == 1 and "neuron init" in result.output


@pytest.mark.slow
def test_demo_runs_the_day_and_a_consumer_pulls_what_it_published(tmp_path: Path) -> None:
    demo_home = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEURON_", "AIRFLOW"))}
    neuron = [sys.executable, "-m", "neuron.cli"]
    demo = subprocess.run(
        [*neuron, "demo", "--no-serve", "--home", str(demo_home), "--day", "2026-11-20"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "batch day done" in demo.stdout, demo.stdout[-2000:]

    # The consumer's side, against the API serving the demo's lake.
    settings = load_settings(home=demo_home)
    key_pem = demo_home / "consumer" / "district.pem"
    private = serialization.load_pem_private_key(key_pem.read_bytes(), password=None)
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    # Served as `neuron serve` serves it: HTTPS with the certificate the demo's init made; the
    # consumer pins the channel (--ca) and the keys (--jwks-fingerprint), never trusting on first use.
    ca = str(hub_certificate(settings).certfile)
    pin = jwks_fingerprint(HubKeys.load(settings).jwks())
    with ServerThread(create_app(settings), tls=tls_options(settings)) as server:
        pull = subprocess.run(
            [
                *neuron,
                "pull",
                "traffic.vehicle_flow_hourly",
                "--hub",
                server.url,
                "--key-id",
                key_id_for("district", raw),
                "--private-key",
                str(key_pem),
                "--out",
                str(tmp_path / "pulled"),
                "--ca",
                ca,
                "--jwks-fingerprint",
                pin,
            ],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert pull.returncode == 0, pull.stdout + pull.stderr
    assert "verified and written" in pull.stdout
    assert list((tmp_path / "pulled" / "traffic.vehicle_flow_hourly").rglob("*.parquet"))
