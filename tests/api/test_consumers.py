"""Registering, listing and revoking consumers and their keys in the control database."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.consumers import list_consumers, register_consumer, revoke_consumer, revoke_key
from kernel.errors import ConfigError
from kernel.settings import Settings
from tests.api.hub import hub_settings, public_pem
from warehouse.migrations import migrate


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = hub_settings(tmp_path)
    migrate(settings.control_url)
    return settings


def test_key_id_is_the_name_and_the_key_hash(settings: Settings) -> None:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = register_consumer(settings, "district", public_pem(private))
    assert key_id == f"district-{hashlib.sha256(raw).hexdigest()[:8]}"
    assert register_consumer(settings, "district", public_pem(private)) == key_id  # idempotent


def test_consumer_needs_an_existing_policy(settings: Settings) -> None:
    pem = public_pem(Ed25519PrivateKey.generate())
    with pytest.raises(ConfigError, match="no sharing policy"):
        register_consumer(settings, "unknown_org", pem)
    with pytest.raises(ConfigError, match="no sharing policy"):
        register_consumer(settings, "district_backup", pem, policy="nope")
    register_consumer(settings, "district_backup", pem, policy="district")
    assert [c.policy for c in list_consumers(settings)] == ["district"]


@pytest.mark.parametrize("name", ["", "Upper", "has space", "../x", "x" * 64])
def test_bad_names_are_refused(settings: Settings, name: str) -> None:
    with pytest.raises(ConfigError):
        register_consumer(settings, name, public_pem(Ed25519PrivateKey.generate()), policy="district")


def test_only_ed25519_public_keys_are_accepted(settings: Settings) -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ConfigError, match="Ed25519"):
        register_consumer(settings, "district", ec_pem)
    with pytest.raises(ConfigError, match="PEM"):
        register_consumer(settings, "district", b"not a key")


def test_list_and_revoke(settings: Settings) -> None:
    first = register_consumer(settings, "district", public_pem(Ed25519PrivateKey.generate()))
    second = register_consumer(settings, "district", public_pem(Ed25519PrivateKey.generate()))
    ps = register_consumer(settings, "public_security", public_pem(Ed25519PrivateKey.generate()))
    revoke_key(settings, first)
    (district, police) = list_consumers(settings)
    assert (district.name, district.policy, district.revoked_at) == ("district", "district", None)
    assert {k.key_id: k.revoked_at is not None for k in district.keys} == {first: True, second: False}
    revoke_consumer(settings, "public_security")
    (_, police) = list_consumers(settings)
    assert police.revoked_at is not None and [k.revoked_at is not None for k in police.keys] == [True]
    assert police.keys[0].key_id == ps
    with pytest.raises(ConfigError, match="revoked"):
        register_consumer(settings, "public_security", public_pem(Ed25519PrivateKey.generate()))


def test_a_revoked_key_cannot_be_registered_again(settings: Settings) -> None:
    private = Ed25519PrivateKey.generate()
    key_id = register_consumer(settings, "district", public_pem(private))
    revoke_key(settings, key_id)
    with pytest.raises(ConfigError, match="revoked"):
        register_consumer(settings, "district", public_pem(private))


def test_revoking_what_does_not_exist_is_an_error(settings: Settings) -> None:
    with pytest.raises(ConfigError):
        revoke_consumer(settings, "nobody")
    with pytest.raises(ConfigError):
        revoke_key(settings, "nobody-00000000")
