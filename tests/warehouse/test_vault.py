"""The raw vault: encrypted at rest, authenticated, bound to its batch, purged when expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from kernel.errors import IntegrityError
from privacy.keys import HubKeys, init_keys
from tests.conftest import make_settings
from warehouse import vault


@pytest.fixture
def keys(tmp_path: Path) -> HubKeys:
    settings = make_settings(tmp_path)
    init_keys(settings)
    return HubKeys.load(settings)


TABLE = pa.table({"plate_no": ["沪A12345", "苏E9K2L7"], "n": [1, 2]})


def test_round_trip_and_nothing_readable_on_disk(tmp_path: Path, keys: HubKeys) -> None:
    landed = vault.land(tmp_path / "v", keys, "batch/1", TABLE, timedelta(days=1))
    blob = landed.path.read_bytes()
    assert "沪A12345".encode() not in blob and b"A12345" not in blob
    assert oct(landed.path.stat().st_mode)[-3:] == "600"
    assert vault.read(tmp_path / "v", keys, "batch/1").equals(TABLE)


def test_altered_object_is_refused(tmp_path: Path, keys: HubKeys) -> None:
    landed = vault.land(tmp_path / "v", keys, "batch/1", TABLE, timedelta(days=1))
    blob = bytearray(landed.path.read_bytes())
    blob[-5] ^= 1
    landed.path.write_bytes(bytes(blob))
    with pytest.raises(IntegrityError):
        vault.read(tmp_path / "v", keys, "batch/1")


def test_an_object_cannot_stand_in_for_another_batch(tmp_path: Path, keys: HubKeys) -> None:
    one = vault.land(tmp_path / "v", keys, "batch/1", TABLE, timedelta(days=1))
    two = vault.land(tmp_path / "v", keys, "batch/2", TABLE.slice(0, 1), timedelta(days=1))
    two.path.write_bytes(one.path.read_bytes())
    with pytest.raises(IntegrityError):
        vault.read(tmp_path / "v", keys, "batch/2")


def test_purge_removes_only_expired_objects(tmp_path: Path, keys: HubKeys) -> None:
    vault.land(tmp_path / "v", keys, "old", TABLE, timedelta(days=1))
    vault.land(tmp_path / "v", keys, "new", TABLE, timedelta(days=30))
    purged = vault.purge_expired(tmp_path / "v", now=datetime.now(UTC) + timedelta(days=2))
    assert purged == ["old"]
    assert vault.read(tmp_path / "v", keys, "new").num_rows == 2
