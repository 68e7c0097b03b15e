"""The hub's keys: created once, owner-only, derived keys stable, JWS that verifies only untouched."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from neuron.errors import IntegrityError, NotInitialised
from privacy.jws import sign_json, verify_json
from privacy.keys import HubKeys, derive_key, init_keys, new_signing_key
from tests.conftest import make_settings


def test_init_creates_owner_only_keys_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert init_keys(settings) == (True, True)
    master = (settings.keys_dir / "master.key").read_bytes()
    assert init_keys(settings) == (False, False)  # never replaced
    assert (settings.keys_dir / "master.key").read_bytes() == master
    for path in settings.keys_dir.rglob("*"):
        if path.suffix in (".key", ".pem"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_load_without_init_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NotInitialised, match="neuron init"):
        HubKeys.load(make_settings(tmp_path))


def test_a_world_readable_master_secret_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_keys(settings)
    (settings.keys_dir / "master.key").chmod(0o644)
    with pytest.raises(Exception, match="chmod 600"):
        HubKeys.load(settings)


def test_derived_keys_depend_on_purpose_and_context() -> None:
    master = b"m" * 32
    assert derive_key(master, "pseudonym", "district", "2026") == derive_key(master, "pseudonym", "district", "2026")
    assert derive_key(master, "pseudonym", "district", "2026") != derive_key(master, "pseudonym", "police", "2026")
    assert derive_key(master, "pseudonym", "a", "bc") != derive_key(master, "pseudonym", "ab", "c")


def test_jws_verifies_and_refuses_tampering(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_keys(settings)
    keys = HubKeys.load(settings)
    token = sign_json({"rows": 3, "feed": "f"}, keys.active_signing_key)
    assert verify_json(token, keys.jwks()) == {"rows": 3, "feed": "f"}
    header, _payload, signature = token.split(".")
    forged = sign_json({"rows": 4, "feed": "f"}, keys.active_signing_key).split(".")[1]
    with pytest.raises(IntegrityError):
        verify_json(f"{header}.{forged}.{signature}", keys.jwks())
    with pytest.raises(IntegrityError):
        verify_json(token, {"keys": []})


def test_rotation_keeps_old_public_keys_listed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_keys(settings)
    old = HubKeys.load(settings).active_signing_key
    token = sign_json({"a": 1}, old)
    new = new_signing_key(settings)
    keys = HubKeys.load(settings)
    assert keys.active_signing_key.kid == new.kid
    assert {k["kid"] for k in keys.jwks()["keys"]} == {old.kid, new.kid}
    assert verify_json(token, keys.jwks()) == {"a": 1}
