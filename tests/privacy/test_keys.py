"""The hub's keys: created once, owner-only, derived keys stable, JWS that verifies only untouched."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kernel.errors import IntegrityError, NotInitialised
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


def test_a_rotated_signing_key_stops_signing_but_stays_listed_until_its_signatures_expire(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from privacy.keys import rotate_signing_key

    settings = make_settings(tmp_path, signature_lifetime_days=30)
    init_keys(settings)
    old = HubKeys.load(settings).active_signing_key
    new = rotate_signing_key(settings)
    keys = HubKeys.load(settings)
    assert keys.active_signing_key.kid == new.kid
    retired = next(k for k in keys.signing_keys if k.kid == old.kid)
    assert retired.retired_at is not None and retired.signs_until <= datetime.now(UTC)
    listed = {k["kid"]: k["exp"] for k in keys.jwks()["keys"]}
    assert set(listed) == {old.kid, new.kid}
    assert listed[old.kid] == int((retired.retired_at + timedelta(days=30)).timestamp())


def test_master_secret_versions_rotate_and_what_the_old_one_protects_stays_readable(tmp_path: Path) -> None:
    from datetime import timedelta

    import pyarrow as pa

    from kernel.errors import ConfigError
    from privacy.master import list_master_versions, rotate_master_secret
    from warehouse import vault

    settings = make_settings(tmp_path)
    init_keys(settings)
    before = HubKeys.load(settings)
    table = pa.table({"plate_no": ["沪A12345"]})
    vault.land(settings.vault_dir, before, "b1", table, timedelta(days=1))
    assert rotate_master_secret(settings) == 2
    after = HubKeys.load(settings)
    assert after.master_version == 2 and [v.active for v in list_master_versions(settings)] == [False, True]
    assert after.derive("pseudonym", "x") != before.derive("pseudonym", "x")
    assert after.derive("pseudonym", "x", version=1) == before.derive("pseudonym", "x")
    assert vault.read(settings.vault_dir, after, "b1") == table  # wrapped by version 1, still opens
    assert (settings.keys_dir / "master-v2.key").stat().st_mode & 0o777 == 0o600
    env = make_settings(tmp_path / "env", master_secret="a" * 44)
    with pytest.raises(ConfigError, match="NEURON_MASTER_SECRET"):
        rotate_master_secret(env)


def test_keys_commands_show_no_secret_and_rotate_with_an_audit_entry(tmp_path: Path) -> None:
    import json

    from neuron.housekeeping import keys_rotate, keys_show
    from warehouse.migrations import migrate

    settings = make_settings(tmp_path)
    init_keys(settings)
    migrate(settings.control_url)
    done = keys_rotate(settings, master_secret=True)
    shown = keys_show(settings)
    assert done["master_secret_version"] == 2
    assert [v["active"] for v in shown["master_secret_versions"]] == [False, True]
    assert [k["active"] for k in shown["signing_keys"]] == [False, True]
    secret = (settings.keys_dir / "master-v2.key").read_text()
    assert secret not in json.dumps(shown) and "d" not in {k for jwk in shown["jwks"]["keys"] for k in jwk}
    # The thumbprints consumers pin: RFC 7638, SHA-256 of the required members in lexicographic order.
    import base64
    import hashlib

    def rfc7638(jwk: dict[str, str]) -> str:
        canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"))
        return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()

    assert shown["thumbprints"] == {jwk["kid"]: rfc7638(jwk) for jwk in shown["jwks"]["keys"]}
    assert len(shown["thumbprints"]) == 2
