"""Passes through public security's policy for the cascade: the plate sealed exactly as the published
feed seals it, contract breaches skipped with a reason naming the field, and configurations
that cannot work refused with one actionable line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from api.consumers import register_consumer
from connectors.base import records_to_raw_batch
from kernel.errors import ConfigError
from kernel.settings import Settings
from peers.viid.records import FEED, PassView
from privacy.keys import HubKeys, init_keys
from privacy.policy import load_policies
from privacy.seal import open_sealed, seal
from schemas.contract import load_contract
from schemas.feeds import load_feeds
from schemas.viid import plate_alias
from tests.conftest import make_settings
from tests.peers.viid_rig import pem
from warehouse.recipients import recipients_by_policy, register_encryption_key

GOOD: dict[str, Any] = {
    "record_id": "MSQ-LIVE-00000001",
    "park_code": "MSQ",
    "community_id": "music-square",
    "gate_code": "G1",
    "gate_name": "北门",
    "direction": "in",
    "plate_no": "沪A12345",
    "plate_color": "blue",
    "vehicle_type": "resident",
    "pass_time": "2026-12-07T20:00:01+08:00",
    "updated_at": "2026-12-07T20:00:02+08:00",
    "fee_fen": None,
}


@pytest.fixture
def hub(tmp_path: Path, migrated_control: str) -> Settings:
    settings = make_settings(tmp_path, control_db_url=migrated_control)
    init_keys(settings)
    return settings


def view_for(settings: Settings) -> PassView:
    policy = load_policies(settings.policies_dir)["public_security"]
    keys = HubKeys.load(settings)
    return PassView(settings, keys, policy, load_feeds()[FEED], recipients_by_policy(settings).get("public_security"))


def raw(*records: dict[str, Any]) -> pa.Table:
    return pa.Table.from_batches([records_to_raw_batch(load_contract("vehicle_passes"), records)])


def test_the_plate_is_sealed_as_the_published_feed_seals_it(hub: Settings) -> None:
    police = X25519PrivateKey.generate()
    register_consumer(hub, "public_security", pem(Ed25519PrivateKey.generate().public_key()))
    register_encryption_key(hub, "public_security", pem(police.public_key()))
    view = view_for(hub)
    bad_plate = GOOD | {"record_id": "2", "plate_no": "沪I0000"}
    bad_direction = GOOD | {"record_id": "3", "direction": "x"}
    drift = GOOD | {"record_id": "4", "owner_phone": "13800000000"}
    passes, skipped = view.passes(raw(GOOD, bad_plate, bad_direction, drift))
    assert len(passes) == 1
    assert skipped == {
        "plate_no: does not match its pattern": 1,
        "direction: not an allowed value": 1,
        "schema drift: unexpected field(s)": 1,
    }
    vehicle = passes[0].vehicle
    recipient = recipients_by_policy(hub)["public_security"]
    hub_key = HubKeys.load(hub).derive("seal", "public_security")
    published = seal("沪A12345", recipient, hub_key, "plate_no", feed=FEED)
    assert vehicle["PlateNoSealed"] == published  # the value the publisher puts in the feed
    assert vehicle["PlateNo"] == plate_alias(published) and len(vehicle["PlateNo"]) == 15  # A.11: string(15)
    assert (
        open_sealed(vehicle["PlateNoSealed"], police, "plate_no", consumer="public_security", feed=FEED) == "沪A12345"
    )
    assert vehicle["PassTime"] == "20261207200001" and len(vehicle["TollgateID"]) == 20
    assert passes[0].record_key != GOOD["record_id"] and len(passes[0].record_key) == 64


def test_without_the_consumers_key_the_channel_does_not_start(hub: Settings) -> None:
    with pytest.raises(ConfigError, match="neuron consumers add public_security --encryption-key"):
        view_for(hub)


def test_a_policy_that_does_not_grant_the_feed_is_refused(hub: Settings) -> None:
    policy = load_policies(hub.policies_dir)["district"]
    with pytest.raises(ConfigError, match=r"does not grant traffic\.vehicle_passes"):
        PassView(hub, HubKeys.load(hub), policy, load_feeds()[FEED], None)


@pytest.mark.parametrize(
    "treated",
    [
        "沪A***45",  # a mask: fits, sent as it is
        "p_" + "0123456789abcdef" * 2,  # a pseudonym longer than 15
        "nhs2.public_security-1a2b3c4d." + "A" * 90,  # the shape of a sealed plate
    ],
)
def test_every_vehicle_object_keeps_plateno_within_the_standards_length(treated: str) -> None:
    from datetime import UTC, date, datetime

    from schemas.viid import PLATE_NO_MAX, SEALED_PLATE, Pass, motor_vehicle
    from simulator.viid_records import vehicle_problems

    record = Pass("music-square", "G1", "in", datetime(2026, 12, 7, 12, tzinfo=UTC), date(2026, 12, 7), treated,
                  None, False)  # fmt: skip
    vehicle = motor_vehicle(record)
    assert 0 < len(vehicle["PlateNo"]) <= PLATE_NO_MAX
    if len(treated) <= PLATE_NO_MAX:
        assert vehicle["PlateNo"] == treated and SEALED_PLATE not in vehicle
    else:  # the whole treated value beside it, PlateNo its stable alias
        assert vehicle[SEALED_PLATE] == treated and vehicle["PlateNo"] == plate_alias(treated)
    assert vehicle_problems(vehicle, image_required=False) == []  # the upper's A.11 checks
