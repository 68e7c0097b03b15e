"""Signing keys (issue 17): permissions checked at load, retired keys trusted for a bounded
period, and a running process picks up a rotation without a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from kernel.errors import ConfigError
from kernel.settings import Settings
from privacy.keys import HubKeys, init_keys, rotate_signing_key
from tests.conftest import make_settings


def test_a_signing_key_readable_by_others_is_refused_in_one_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_keys(settings)
    pem = next((settings.keys_dir / "signing").glob("*.pem"))
    pem.chmod(0o640)
    with pytest.raises(ConfigError, match=r"readable by group or others .*chmod 600") as refused:
        HubKeys.load(settings)
    assert "\n" not in str(refused.value)


def test_retired_keys_are_trusted_for_a_bounded_period() -> None:
    assert Settings().signature_lifetime_days <= 400
    with pytest.raises(ValidationError):
        Settings(signature_lifetime_days=3650)


def test_a_loaded_key_set_follows_a_rotation(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_keys(settings)
    keys = HubKeys.load(settings)  # as the API holds them, for its whole life
    before = keys.active_signing_key.kid
    rotated = rotate_signing_key(settings)
    keys._checked -= 10  # the once-a-second look is due
    assert keys.active_signing_key.kid == rotated.kid != before
    assert {before, rotated.kid} <= {jwk["kid"] for jwk in keys.jwks()["keys"]}
