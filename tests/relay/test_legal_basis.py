"""Consent and legal basis on every path of in-home devices' data (issue 16, item 3).

A household that has not opted in to elderly care falls: the live alarm reaches the upstream
whose policy sends falls on vital interest, not the one that sends them on consent; the
lifecycle the relay records carries the household's token, so `safety.alarms` leaves the
alarm out of a consumer's view on consent and keeps it on vital interest; `care.elderly_daily`
never counts the household. The relay runs its real worker, store and policies; only the
brokers are absent (nothing is published here: the outbox rows are what would be).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, cast

import duckdb
import pyarrow as pa
import pytest
import yaml

from kernel.errors import ConfigError
from kernel.push_settings import NgsiLdPush, PushSettings
from kernel.relay_settings import RelaySettings, Upstream
from kernel.settings import Settings
from privacy.deidentify import staging_key
from privacy.keys import HubKeys, init_keys
from privacy.policy import RELAY_IN_HOME, Policy, load_policies
from privacy.pseudonymise import pseudonym
from privacy.view import ViewContext, consumer_view
from relay.alarms import CATEGORIES, FAMILY_STREAMS, contract
from relay.service import Inbound, Relay
from schemas.feeds import load_feeds
from simulator.community import Community
from simulator.devices import Device, DeviceFleet
from tests.conftest import REPO_ROOT, make_settings
from tests.relay.rig import START, alarm
from warehouse.consent import consenting_households, record_consent
from warehouse.marts import HERE as MARTS
from warehouse.migrations import migrate

FLEET = DeviceFleet(Community(seed=3, households_count=150))
# Two households with a care wristband: the first opted in to elderly care, the second did not.
CONSENTING, REFUSING = (
    FLEET.wristbands[0],
    next(b for b in FLEET.wristbands if b.info["household_id"] != FLEET.wristbands[0].info["household_id"]),
)


def hub(tmp_path: Path, police_fall: str = "consent", **overrides: Any) -> Settings:
    """A hub whose police upstream gets falls on `police_fall`, the district's on vital interest."""
    policies = tmp_path / "policies"
    shutil.copytree(REPO_ROOT / "config" / "policies", policies)
    path = policies / "public_security.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("fall: vital_interest", f"fall: {police_fall}"), encoding="utf-8")
    relay = RelaySettings(
        metrics_port=0,
        upstreams=[
            Upstream(name="district", tls=False),
            Upstream(name="public_security", tls=False, topic="police/{district}/{community}/alarm/{category}"),
        ],
    )
    settings = make_settings(tmp_path / "hub", policies_dir=policies, relay=relay, **overrides)
    init_keys(settings)
    migrate(settings.control_url)
    token = household_token(settings, CONSENTING)
    record_consent(settings, token, "elderly_care", True, "platform", START, contracts=[])
    return settings


def household_token(settings: Settings, device: Device) -> str:
    return pseudonym(staging_key(HubKeys.load(settings), "household"), str(device.info["household_id"]))


def inbound(device: Device, n: int = 0, alarm_type: str = "fall") -> Inbound:
    message = alarm(FLEET, device, n, "raised", START, alarm_type=alarm_type)
    payload = json.dumps(message.payload).encode()
    return Inbound(None, message.topic, payload, time.time(), cast(Any, None), n, 1, 0)


def relayed(
    settings: Settings, devices: list[Device], alarm_type: str = "fall"
) -> tuple[dict[str, set[str]], list[dict[str, Any]]]:
    """The upstreams each device's fall alarm is queued for, and the lifecycle rows recorded."""
    relay = Relay(settings)
    relay._process([inbound(d, i, alarm_type) for i, d in enumerate(devices)])
    queued = relay._commits.get_nowait()
    assert queued is not None
    commit, _ = queued
    household_of = {e["alarm_id"]: e["household"] for e in commit.events}
    tokens = {household_token(settings, d): d.device_id for d in devices}
    reached: dict[str, set[str]] = {d.device_id: set() for d in devices}
    for row in commit.outbox:
        if row["destination"] in ("district", "public_security", "ngsi-ld:district"):
            reached[tokens[household_of[row["alarm_id"]]]].add(row["destination"])
    return reached, commit.events


def test_a_non_consenting_households_fall_goes_on_vital_interest_but_not_on_consent(tmp_path: Path) -> None:
    settings = hub(tmp_path)
    reached, events = relayed(settings, [CONSENTING, REFUSING])
    assert reached[CONSENTING.device_id] == {"district", "public_security"}
    assert reached[REFUSING.device_id] == {"district"}  # vital interest only
    # The household is kept as the consent store's token, never raw.
    raw = {str(d.info["household_id"]) for d in (CONSENTING, REFUSING)}
    assert {e["household"] for e in events} == {household_token(settings, d) for d in (CONSENTING, REFUSING)}
    assert not raw & {e["household"] for e in events}


def test_consent_given_later_lets_the_next_alarm_through_on_consent(tmp_path: Path) -> None:
    settings = hub(tmp_path)
    record_consent(settings, household_token(settings, REFUSING), "elderly_care", True, "platform", contracts=[])
    reached, _ = relayed(settings, [REFUSING])
    assert reached[REFUSING.device_id] == {"district", "public_security"}


def test_a_consumers_ngsi_ld_alerts_follow_its_safety_alarms_basis(tmp_path: Path) -> None:
    """The district's context broker gets Alert entities as its safety.alarms would: an SOS on
    consent only from the household that opted in (falls it does not get there at all)."""
    push = PushSettings(ngsi_ld=[NgsiLdPush(name="district", broker_url="http://127.0.0.1:9", alerts=True)])
    settings = hub(tmp_path, push=push)
    policy = settings.policies_dir / "district.yaml"
    text = policy.read_text(encoding="utf-8").replace("category: [fall, sos, heart_rate]", "category: [fall]")
    policy.write_text(text.replace("basis: {smoke: consent, gas: consent}", "basis: consent"), encoding="utf-8")
    reached, _ = relayed(settings, [CONSENTING, REFUSING], alarm_type="sos")
    assert "ngsi-ld:district" in reached[CONSENTING.device_id]
    assert "ngsi-ld:district" not in reached[REFUSING.device_id]
    assert "district" not in reached[REFUSING.device_id]  # the relay's SOS basis is consent too


def test_an_upstream_whose_policy_states_no_relay_basis_is_refused_in_one_line(tmp_path: Path) -> None:
    settings = hub(tmp_path)
    path = settings.policies_dir / "public_security.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["relay"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        Relay(settings)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message
    assert "relay upstream 'public_security'" in message and "add `relay: {basis:" in message


def test_the_relays_in_home_categories_are_the_ones_policies_state_a_basis_for() -> None:
    in_home = {
        category: contract(FAMILY_STREAMS[family]).consent
        for (family, _), (category, _) in CATEGORIES.items()
        if contract(FAMILY_STREAMS[family]).consent
    }
    assert in_home == RELAY_IN_HOME


def _stg_alarm_lifecycle(events: list[dict[str, Any]]) -> pa.Table:
    rows = [
        {**{k: v for k, v in e.items() if k != "room_no"}, "room_no_token": None, "_batch_id": "b1"} for e in events
    ]
    return pa.Table.from_pylist(rows)


def _policy(consumer: str, fall: str) -> Policy:
    fields = {"day": "keep", "alarm_id": "keep", "category": "keep", "building": "keep"}
    basis = {"smoke": "consent", "gas": "consent", "fall": fall, "sos": "consent", "heart_rate": "consent"}
    grant = {"fields": fields, "basis": basis}
    return Policy.model_validate(
        {"consumer": consumer, "version": 1, "title": "t", "legal_basis": "t", "retention_days": 30,
         "feeds": {"safety.alarms": grant}}
    )  # fmt: skip


def test_safety_alarms_leaves_the_fall_out_on_consent_and_keeps_it_on_vital_interest(tmp_path: Path) -> None:
    settings = hub(tmp_path)
    _, events = relayed(settings, [CONSENTING, REFUSING])
    stg_alarm_lifecycle = _stg_alarm_lifecycle(events)
    with duckdb.connect() as con:
        con.register("stg_alarm_lifecycle_view", stg_alarm_lifecycle)
        con.execute("CREATE TABLE stg_alarm_lifecycle AS SELECT * FROM stg_alarm_lifecycle_view")
        con.execute((MARTS / "33_safety_alarms.sql").read_text(encoding="utf-8"))
        mart = con.sql("SELECT * FROM mart_safety_alarms ORDER BY alarm_id").to_arrow_table()
    feed = load_feeds()["safety.alarms"]
    consents = {f: frozenset(consenting_households(settings, f)) for f in ("smoke_gas", "elderly_care")}
    ctx = ViewContext(HubKeys.load(settings), "2026", consents=consents)
    by_alarm = {e["alarm_id"]: e["household"] for e in events}
    token = household_token(settings, REFUSING)

    def households(policy: Policy) -> set[str]:
        view = consumer_view(mart, feed, policy, ctx)
        assert "household" not in view.column_names  # only to check consent, never published
        return {by_alarm[a] for a in view.column("alarm_id").to_pylist()}

    assert token not in households(_policy("on_consent", "consent"))
    assert households(_policy("on_vital_interest", "vital_interest")) == set(by_alarm.values())


def test_care_elderly_daily_never_counts_a_household_that_did_not_opt_in(tmp_path: Path) -> None:
    settings = hub(tmp_path)
    tokens = {d.device_id: household_token(settings, d) for d in (CONSENTING, REFUSING)}
    at = START.replace(tzinfo=None)
    care = [
        {"community_id": "c1", "household_id_token": tokens[d.device_id], "resident_id_token": f"r{i}",
         "msg_id": f"m{i}", "event_time": at, "received_at": at, "_batch_id": "b1", "kind": "alarm",
         "alarm_id": f"a{i}", "alarm_state": "raised", "alarm_type": "fall"}
        for i, d in enumerate((CONSENTING, REFUSING))
    ]  # fmt: skip
    consent = [
        {"community_id": "c1", "household_id_token": household_token(settings, d), "function": "elderly_care",
         "granted": d is CONSENTING, "changed_at": at, "updated_at": at, "_batch_id": "b1"}
        for d in (CONSENTING, REFUSING)
    ]  # fmt: skip
    with duckdb.connect() as con:
        for name, rows in (("stg_elderly_care", care), ("stg_platform_consent", consent)):
            con.register(f"{name}_rows", pa.Table.from_pylist(rows))
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_rows")
        con.execute((MARTS / "32_care_elderly_daily.sql").read_text(encoding="utf-8"))
        counted = con.execute("SELECT sum(people_under_care), sum(falls) FROM mart_care_elderly_daily").fetchone()
    assert counted == (1, 1)
    # And no policy may send the care feed on anything but consent.
    for policy in load_policies(settings.policies_dir).values():
        if policy.grants("care.elderly_daily"):
            assert policy.feed_basis("care.elderly_daily") == "consent"
