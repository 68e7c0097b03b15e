"""docs/consumer-from-scratch.sh (curl + openssl, no Python, no hub code) pulls a verified
partition from a real hub, and stops at a tampered one: the walk-through in docs/consumers.md works."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.api.hub import LiveHub
from tests.api.lake import FEED
from tests.api.proxy import TamperingProxy, flip_last_body_byte

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "consumer-from-scratch.sh"
pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("openssl")), reason="curl and openssl are needed to run the walk-through"
)


def run(hub: LiveHub, url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    identity = hub.identities["district"]
    key = tmp_path / "district.pem"
    key.write_bytes(
        identity.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    env = {
        "PATH": os.environ["PATH"],
        "HUB": url,
        "KEY_ID": identity.key_id,
        "KEY": str(key),
        "HUB_X": hub.jwks["keys"][0]["x"],
        "FEED": FEED,
        "OUT": str(tmp_path / "pulled"),
    }
    if hub.ca is not None:
        env["HUB_CA"] = str(hub.ca)  # the channel pinned to the hub's certificate
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_the_walk_through_pulls_a_verified_partition(fresh_hub: LiveHub, tmp_path: Path) -> None:
    done = run(fresh_hub, fresh_hub.url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "verified:" in done.stdout
    (stored,) = (tmp_path / "pulled").glob("*.parquet")
    newest = fresh_hub.latest("district")[-1]
    lake = fresh_hub.settings.lake_path / "district" / FEED / newest.partition_key / f"v{newest.version}.parquet"
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(lake.read_bytes()).digest()


def test_the_walk_through_refuses_a_tampered_answer(fresh_hub: LiveHub, tmp_path: Path) -> None:
    with TamperingProxy(fresh_hub.url) as proxy:
        proxy.tamper = flip_last_body_byte
        done = run(fresh_hub, proxy.url, tmp_path)
    assert done.returncode == 3 and "NOT VERIFIED" in done.stderr
    assert not list((tmp_path / "pulled").glob("*.parquet"))
