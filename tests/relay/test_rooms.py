"""The room of an in-home alarm: found in the platform's register of households, sealed to the
consumer whose policy entitles it (public security), kept only encrypted in the control
database, and opened again on its way into the batch path (the `alarm_lifecycle` stream)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, insert, text

from connectors.registry import make_stream
from kernel.errors import IntegrityError
from kernel.settings import Settings, SqlSource
from privacy.keys import HubKeys, b64u_decode
from privacy.room_cipher import RoomCipher
from privacy.seal import RELAY_FEED, open_sealed
from relay.destinations import wait_for
from relay.rooms import RoomDirectory, room_of_address
from relay.run import BackgroundRelay
from simulator.community import Community
from simulator.devices_publish import publish_messages
from simulator.platform_schema import create_schema, households
from tests.relay.rig import START, alarm, relay_rig
from warehouse.control import engine_for


@pytest.mark.parametrize(
    ("address", "room"),
    [("3号楼2单元302室", "302"), ("12号楼1单元1801室", "1801"), ("3-2-302", None), ("", None), (None, None)],
)
def test_the_room_is_read_from_a_platform_address_or_not_guessed(address: str | None, room: str | None) -> None:
    assert room_of_address(address) == room


def _platform(path: Path, communities: list[Community]) -> SqlSource:
    """The platform's database with its `households` table, as the simulator builds it."""
    engine = create_engine(f"sqlite:///{path}")
    create_schema(engine)
    at = datetime(2026, 11, 1)
    with engine.begin() as conn:
        for c in communities:
            rows = [
                {
                    "community_id": c.community_id,
                    "household_id": h.household_id,
                    "building": h.building,
                    "unit": h.unit,
                    "floor": h.floor,
                    "address": h.address,
                    "area_m2": 90.0,
                    "arrears_fen": 0,
                    "created_at": at,
                    "updated_at": at,
                }
                for h in c.households
            ]
            conn.execute(insert(households), rows)
    engine.dispose()
    return SqlSource(url=SecretStr(f"sqlite:///{path}"))


def _with_platform(hub: Settings, source: SqlSource) -> Settings:
    return hub.model_copy(update={"platform": source})


def test_the_directory_reads_only_its_own_community_and_keeps_what_it_knew_when_the_platform_fails(
    tmp_path: Path,
) -> None:
    ours, theirs = Community(seed=3, households_count=20), Community(seed=4, community_id="other", households_count=20)
    source = _platform(tmp_path / "platform.db", [ours, theirs])
    directory = RoomDirectory(source, ours.community_id, 600)
    assert directory.refresh()
    assert {h.household_id: h.room for h in ours.households} == {
        h.household_id: directory.room_of(h.household_id) for h in ours.households
    }
    assert directory.room_of(None) is None and directory.room_of("H-unknown") is None

    (tmp_path / "platform.db").unlink()
    (tmp_path / "platform.db").write_bytes(b"not a database")
    assert not directory.refresh()  # logged, not raised: rooms never stop the relay
    assert directory.room_of(ours.households[0].household_id) == ours.households[0].room

    assert not RoomDirectory(SqlSource(), ours.community_id, 600).refresh()  # no platform configured


def test_a_stored_room_opens_only_unaltered_and_a_plain_one_is_refused(tmp_path: Path) -> None:
    with relay_rig(tmp_path) as rig:
        cipher = RoomCipher(HubKeys.load(rig.hub), rig.hub.community_id)
        stored = cipher.encrypt("302")
        blob = b64u_decode(stored.removeprefix("enc:"))
        assert stored.startswith("enc:") and blob[:2] == (1).to_bytes(2, "big")  # readable after a rotation
        assert cipher.decrypt(stored) == "302" and cipher.decrypt(None) is None
        assert cipher.encrypt("302") != stored  # a fresh nonce each time
        at = len("enc:") + 30  # a character of the ciphertext
        altered = stored[:at] + ("A" if stored[at] != "A" else "B") + stored[at + 1 :]
        with pytest.raises(IntegrityError, match="does not decrypt"):
            cipher.decrypt(altered)
        with pytest.raises(IntegrityError, match="not encrypted"):
            cipher.decrypt("302")
        other = RoomCipher(HubKeys.load(rig.hub), "another-community")
        with pytest.raises(IntegrityError):
            other.decrypt(stored)


def test_public_security_gets_the_room_sealed_the_district_none_and_the_database_only_its_ciphertext(
    tmp_path: Path,
) -> None:
    with relay_rig(tmp_path) as rig:
        hub = _with_platform(rig.hub, _platform(tmp_path / "platform.db", [rig.fleet.community]))
        district, police = rig.consumer("district"), rig.consumer("police")
        detector = rig.fleet.detectors[0]
        home = next(h for h in rig.fleet.community.households if h.household_id == detector.info["household_id"])
        with BackgroundRelay(hub):
            publish_messages(rig.community.host, rig.community.port, [alarm(rig.fleet, detector, 1, "raised", START)])
            assert wait_for(lambda: len(police.payloads()) == 1 and len(district.payloads()) == 1, 15)

        sealed = police.payloads()[0]["sealed"]
        assert set(sealed) == {"device_id", "household_id", "room_no"}
        assert (
            open_sealed(sealed["room_no"], rig.police_key, "room_no", consumer="public_security", feed=RELAY_FEED)
            == home.room
        )
        assert "sealed" not in district.payloads()[0] and "room" not in str(district.payloads()[0]["location"])

        cipher = RoomCipher(HubKeys.load(hub), hub.community_id)
        with engine_for(hub.control_url).connect() as conn:
            stored = [
                *conn.execute(text("SELECT room_no FROM relay_alarms")).scalars(),
                *conn.execute(text("SELECT room_no FROM relay_lifecycle")).scalars(),
            ]
            dump = " ".join(
                str(v)
                for table in ("relay_alarms", "relay_lifecycle", "relay_outbox", "relay_sealed")
                for row in conn.execute(text(f"SELECT * FROM {table}"))
                for v in row
            )
        assert stored and all(s.startswith("enc:") for s in stored)
        assert {cipher.decrypt(s) for s in stored} == {home.room}
        assert home.address not in dump and detector.info["household_id"] not in dump

        # The batch path: the stream opens the room into the raw batch (landed encrypted, then
        # pseudonymised and sealed by de-identification like any raw room).
        since = datetime.now(UTC) - timedelta(hours=1)
        batches = list(make_stream("alarm_lifecycle", hub).extract(since, datetime.now(UTC) + timedelta(minutes=1)))
        rooms = pa.concat_tables([pa.Table.from_batches([b]) for b in batches]).column("room_no").to_pylist()
        assert rooms == [home.room]


def test_without_the_platform_the_relay_relays_with_no_room(tmp_path: Path) -> None:
    with relay_rig(tmp_path) as rig:
        broken = SqlSource(url=SecretStr(f"sqlite:///{tmp_path / 'missing.db'}"))
        police = rig.consumer("police")
        detector = rig.fleet.detectors[0]
        with BackgroundRelay(_with_platform(rig.hub, broken)) as background:
            publish_messages(rig.community.host, rig.community.port, [alarm(rig.fleet, detector, 1, "raised", START)])
            assert wait_for(lambda: len(police.payloads()) == 1, 15)
            assert not background.relay.rooms.loaded
        assert set(police.payloads()[0]["sealed"]) == {"device_id", "household_id"}
