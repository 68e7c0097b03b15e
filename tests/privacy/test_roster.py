"""The roster of residents' names: encrypted at rest, opened only unaltered (HubKeys.encrypt_at_rest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.errors import IntegrityError
from privacy.keys import HubKeys, init_keys
from privacy.roster import load_roster, save_roster
from tests.conftest import make_settings


def test_the_roster_round_trips_encrypted_and_an_altered_one_is_refused(tmp_path: Path) -> None:
    hub = make_settings(tmp_path / "hub")
    init_keys(hub)
    keys = HubKeys.load(hub)
    assert load_roster(hub, keys) == frozenset()  # none sent yet
    assert save_roster(hub, keys, ["张伟", " 李娜 ", "", "张伟"]) == 2
    assert load_roster(hub, keys) == {"张伟", "李娜"}

    path = hub.state_path / "roster.enc"
    blob = path.read_bytes()
    assert "张伟".encode() not in blob and blob[:2] == keys.master_version.to_bytes(2, "big")
    path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(IntegrityError, match="the roster does not decrypt"):
        load_roster(hub, keys)
