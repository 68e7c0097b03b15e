"""The lower platform's /VIID/Subscribes as the simulated upper drives it: create, list, cancel
with PUT, and refusals of what public security's policy does not grant; the gate directory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from kernel.viid_settings import ViidSettings
from peers.viid.protocol import ACTIVE, CANCELLED, INVALID_OPERATION, OK
from peers.viid.server import ViidServer
from peers.viid.store import ViidStore
from simulator.viid_upper import UpperConfig, UpperPlatform

UPPER_ID = UpperConfig.upper_id


@dataclass
class Pair:
    lower: ViidServer
    upper: UpperPlatform
    store: ViidStore


@pytest.fixture
def pair(migrated_control: str) -> Iterator[Pair]:
    store = ViidStore(migrated_control)
    config = ViidSettings(upper_url="http://127.0.0.1:9", upper_id=UPPER_ID, listen_port=0)  # type: ignore[call-arg]
    lower = ViidServer(config, store, "music-square")
    lower.start()
    try:
        with UpperPlatform(UpperConfig()) as upper:
            yield Pair(lower, upper, store)
    finally:
        lower.stop()


def test_create_list_cancel(pair: Pair) -> None:
    sid, code = pair.upper.subscribe(pair.lower.url)
    assert code == OK and len(sid) == 33
    listed = pair.upper.list_subscriptions(pair.lower.url)
    assert [(s["SubscribeID"], s["SubscribeStatus"]) for s in listed] == [(sid, ACTIVE)]
    assert [s.subscribe_id for s in pair.store.active(datetime.now(UTC))] == [sid]
    assert pair.upper.cancel(pair.lower.url, sid) == OK
    listed = pair.upper.list_subscriptions(pair.lower.url)
    assert listed[0]["SubscribeStatus"] == CANCELLED and listed[0]["CancelReason"] == "任务结束"
    assert pair.store.subscriptions()[0].status == CANCELLED
    assert pair.upper.cancel(pair.lower.url, sid) == OK  # cancelling twice is harmless
    assert pair.upper.cancel(pair.lower.url, "3" * 33) == INVALID_OPERATION  # unknown


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"detail": "12"}, INVALID_OPERATION),  # faces: not granted
        ({"detail": "13,11"}, INVALID_OPERATION),  # vehicles and persons: persons not granted
        ({"extra": {"ResultImageDeclare": "14"}}, INVALID_OPERATION),  # images: the hub has none
        ({"extra": {"ResultFeatureDeclare": 1}}, INVALID_OPERATION),
        ({"resource_class": 3}, INVALID_OPERATION),  # cases
        ({"extra": {"ReceiveAddr": "ftp://x"}}, 8),
        ({"extra": {"EndTime": "20200101000000"}}, 8),
        ({"extra": {"ReceiveAddr": "http://10.0.0.9/VIID/SubscribeNotifications"}}, INVALID_OPERATION),  # elsewhere
    ],
)
def test_only_what_the_policy_grants_is_accepted(pair: Pair, kwargs: dict[str, object], code: int) -> None:
    _, answered = pair.upper.subscribe(pair.lower.url, **kwargs)  # type: ignore[arg-type]
    assert answered == code
    assert pair.store.subscriptions() == []


def test_an_upper_cannot_open_more_subscriptions_than_allowed(pair: Pair) -> None:
    pair.lower.config = pair.lower.config.model_copy(update={"max_subscriptions": 2})
    codes = [pair.upper.subscribe(pair.lower.url)[1] for _ in range(3)]
    assert codes == [OK, OK, INVALID_OPERATION]
    assert len(pair.store.subscriptions()) == 2


def test_requests_must_name_the_upper(pair: Pair) -> None:
    reply = requests.get(pair.lower.url + "/VIID/Subscribes", headers={"User-Identify": "1" * 20}, timeout=5)
    assert reply.status_code == 401
    reply = requests.get(pair.lower.url + "/VIID/Subscribes", timeout=5)
    assert reply.status_code == 401


def test_directory_lists_each_gate_and_its_cameras(pair: Pair) -> None:
    apes, gates = pair.upper.directory(pair.lower.url)
    assert [g["Name"] for g in gates] == ["北门", "南门"]
    assert all(len(g["TollgateID"]) == 20 and g["TollgateID"].isdigit() for g in gates)
    assert len(apes) == 4 and {a["TollgateID"] for a in apes} == {g["TollgateID"] for g in gates}
    assert len({a["ApeID"] for a in apes}) == 4


def test_neuron_up_runs_the_cascade_only_when_configured(tmp_path: Path) -> None:
    from kernel.settings import load_settings
    from neuron.up import AirflowPorts, hub_services

    ports = AirflowPorts(api=18080, scheduler_health=18974, log_server=18793)
    plain = load_settings(home=tmp_path, viid=ViidSettings())  # type: ignore[call-arg]
    assert "viid" not in [s.name for s in hub_services(plain, ports)]
    cascade = load_settings(home=tmp_path, viid=ViidSettings(upper_url="http://127.0.0.1:9"))  # type: ignore[call-arg]
    viid = [s for s in hub_services(cascade, ports) if s.name == "viid"]
    assert len(viid) == 1 and viid[0].argv[-1] == "viid"
