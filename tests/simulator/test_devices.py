"""The simulated MQTT devices: deterministic, consent-bound, realistic, faults as declared."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest

from simulator.community import Community
from simulator.devices import CST, DeviceFleet, Message
from simulator.devices_faults import FAULT_KINDS, DeviceFaults
from simulator.devices_publish import messages_between

START = datetime(2026, 11, 20, 6, tzinfo=CST)


@pytest.fixture(scope="module")
def fleet() -> DeviceFleet:
    return DeviceFleet(Community(seed=5, households_count=120))


def payload(m: Message) -> dict[str, object]:
    assert isinstance(m.payload, dict)
    return m.payload


def test_the_same_seed_sends_the_same_messages_and_a_range_is_the_union_of_its_parts(fleet: DeviceFleet) -> None:
    whole = messages_between(fleet, START, START + timedelta(hours=3))
    again = messages_between(DeviceFleet(Community(seed=5, households_count=120)), START, START + timedelta(hours=3))
    assert [m.body() for m in whole] == [m.body() for m in again]
    middle = START + timedelta(hours=1, minutes=17)  # not on an hour: a range may start anywhere
    parts = messages_between(fleet, START, middle) + messages_between(fleet, middle, START + timedelta(hours=3))
    assert [m.body() for m in parts] == [m.body() for m in whole]
    other = messages_between(DeviceFleet(Community(seed=6, households_count=120)), START, START + timedelta(hours=1))
    assert {m.msg_id for m in other}.isdisjoint(m.msg_id for m in whole)


def test_in_home_devices_exist_only_for_households_that_opted_in(fleet: DeviceFleet) -> None:
    households = {h.household_id: h for h in fleet.community.households}
    assert fleet.detectors and fleet.wristbands
    assert all(households[d.info["household_id"]].consent_smoke_gas for d in fleet.detectors)
    for band in fleet.wristbands:
        home = households[band.info["household_id"]]
        assert home.consent_elderly_care
        assert band.info["resident_id"] in {r.resident_id for r in home.elderly}
    sent = messages_between(fleet, START, START + timedelta(hours=2), DeviceFaults.none())
    opted_in = {h for h, home in households.items() if home.consent_smoke_gas or home.consent_elderly_care}
    assert {payload(m)["household_id"] for m in sent if "household_id" in payload(m)} <= opted_in


def test_every_identifier_a_message_carries_is_in_the_ground_truth(fleet: DeviceFleet) -> None:
    truth = fleet.ground_truth()
    known = {i for ids in truth.values() for i in ids}
    sent = messages_between(fleet, START, START + timedelta(hours=4), DeviceFaults.none())
    carried = {
        str(payload(m)[k]) for m in sent for k in ("household_id", "resident_id", "tag_id") if payload(m).get(k)
    } | {str(payload(m)["device_id"]) for m in sent if m.stream in ("home_safety", "elderly_care")}
    assert carried and carried <= known
    assert set(truth) == {"nonmotor_tags", "household_ids", "resident_ids", "home_devices", "wristbands"}


def test_devices_follow_their_schedules_and_physics(fleet: DeviceFleet) -> None:
    day = messages_between(fleet, START - timedelta(hours=6), START + timedelta(hours=18), DeviceFaults.none())
    per_stream = Counter(m.stream for m in day)
    assert per_stream["environment"] == 6 * 60 * 24  # six stations, one reading a minute
    assert per_stream["streetlights"] >= len(fleet.lamps) * 4 * 24  # every 15 min, plus fault alarms
    env = [payload(m) for m in day if m.stream == "environment"]
    assert all(0 < float(str(p["pm25"])) < 300 and 0 <= float(str(p["humidity_pct"])) <= 100 for p in env)
    lamps = {(datetime.fromisoformat(str(payload(m)["event_time"])).hour, payload(m).get("lamp_state")) for m in day}
    assert (12, "off") in lamps and (20, "on") in lamps and (2, "dimmed") in lamps
    alarms = [payload(m) for m in day if m.topic.endswith("/alarm")]
    states = Counter((a["alarm_id"], a["alarm_state"]) for a in alarms)
    assert all(states[(a["alarm_id"], "raised")] == 1 for a in alarms)  # raised once, cleared later


def test_faults_are_injected_at_their_rates_and_logged(fleet: DeviceFleet) -> None:
    faults = DeviceFaults(
        malformed_payload_rate=0.02,
        malformed_value_rate=0.02,
        out_of_range_rate=0.02,
        duplicate_rate=0.02,
        late_rate=0.02,
        out_of_order_rate=0.02,
    )
    sent = messages_between(fleet, START, START + timedelta(hours=6), faults)
    kinds = Counter(m.fault for m in sent if m.fault)
    assert set(kinds) == set(FAULT_KINDS)
    assert all(0.01 < kinds[k] / len(sent) < 0.04 for k in FAULT_KINDS if k != "duplicate")
    for m in sent:
        if m.fault == "malformed_payload":
            with pytest.raises(ValueError):
                json.loads(m.body())
        elif m.fault == "late":
            assert m.publish_at - datetime.fromisoformat(str(payload(m)["event_time"])) >= timedelta(hours=1)
    twice = Counter(m.msg_id for m in sent if m.fault == "duplicate")
    assert twice and all(n == 2 for n in twice.values())  # a resend keeps its msg_id
    assert all(m.fault is None for m in messages_between(fleet, START, START + timedelta(hours=1), DeviceFaults.none()))


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("added", lambda p: p.get("fw_version") == "2.4.1"),
        ("renamed", lambda p: "pm2_5" in p and "pm25" not in p),
        ("retyped", lambda p: isinstance(p["pm25"], dict)),
    ],
)
def test_schema_drift_hits_a_share_of_a_streams_devices(fleet: DeviceFleet, kind: str, check: object) -> None:
    faults = DeviceFaults.only_drift({"environment": kind}, 0.34)
    sent = messages_between(fleet, START, START + timedelta(hours=1), faults)
    drifted = {payload(m)["device_id"] for m in sent if m.drift == kind}
    assert len(drifted) == 2  # a third of six stations
    assert all(check(payload(m)) for m in sent if m.drift)  # type: ignore[operator]
    assert all(m.drift is None for m in sent if m.stream != "environment")
