"""The seven MQTT streams: registered with their contracts, extracted from landed batches, and
validated with every injected fault quarantined (or dropped as a duplicate) for its reason.

Batches are landed here directly (no broker) from the simulator's messages, the way the
collector lands them; the end-to-end test at the bottom goes through a real broker, the
collector and every pipeline stage, and scans everything the hub wrote for identifiers.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import pipeline
from connectors import collector_landing as landing
from connectors.collector_progress import landed_through, write_watermark
from connectors.collector_run import BackgroundCollector
from connectors.mqtt import FAMILIES, MqttStream, hub_keys, identify, landing_root, route
from connectors.registry import STREAMS, make_stream
from kernel.mqtt_settings import MqttSettings
from kernel.settings import Settings
from privacy.keys import init_keys
from schemas.contract import EXTRA_COLUMN
from schemas.validate import validate_batch
from simulator.community import Community
from simulator.devices import CST, DeviceFleet, Message
from simulator.devices_broker import Broker
from simulator.devices_faults import DeviceFaults
from simulator.devices_publish import messages_between, publish_range
from tests.conftest import make_settings
from tests.leaks import find_leaks, texts_of_lake, texts_of_warehouse
from warehouse.migrations import migrate

MQTT_STREAMS = sorted(f.stream for f in FAMILIES.values())
BAD = {"malformed_payload", "malformed_value", "out_of_range"}  # faults that quarantine a message
SIM_START = datetime(2026, 11, 20, 6, tzinfo=CST)
VALUE_FAULTS = DeviceFaults(
    malformed_payload_rate=0.03,
    malformed_value_rate=0.03,
    out_of_range_rate=0.03,
    duplicate_rate=0.03,
    late_rate=0.0,
    out_of_order_rate=0.03,
)


@pytest.fixture(scope="module")
def fleet() -> DeviceFleet:
    return DeviceFleet(Community(seed=11, households_count=150))


@pytest.fixture
def hub(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path / "hub")
    init_keys(settings)
    return settings


def land_messages(hub: Settings, messages: list[Message]) -> tuple[datetime, datetime]:
    """Land messages as the collector would, received one millisecond apart; returns the window."""
    root = landing_root(hub)
    start_us = int(datetime.now(UTC).timestamp() * 1e6)
    rows = []
    for n, m in enumerate(messages):
        msg_id, problem = identify(m.topic.encode(), m.body())
        stream, topic_problem = route(m.topic, "neuron", hub.community_id)
        rows.append((stream, msg_id, m.topic, m.body(), start_us + 1000 * n, topic_problem or problem))
    landing.land(hub_keys(hub), root, rows, "test-batch")
    end_us = start_us + 1000 * len(messages) + 1
    write_watermark(root, end_us, "test")
    return tuple(datetime.fromtimestamp(us / 1e6, UTC) for us in (start_us, end_us))  # type: ignore[return-value]


def stream_messages(fleet: DeviceFleet, stream: str, faults: DeviceFaults, hours: int = 3) -> list[Message]:
    sent = messages_between(fleet, SIM_START, SIM_START + timedelta(hours=hours), faults)
    return [m for m in sent if m.stream == stream]


def extract(hub: Settings, stream: str, window: tuple[datetime, datetime]) -> pa.Table:
    return pa.Table.from_batches(list(make_stream(stream, hub).extract(*window)))


@pytest.mark.parametrize("name", MQTT_STREAMS)
def test_each_stream_is_registered_with_its_contract(hub: Settings, name: str) -> None:
    spec = STREAMS[name]
    stream = make_stream(name, hub)
    family = next(f for f in FAMILIES.values() if f.stream == name)
    assert isinstance(stream, MqttStream) and stream.contract.name == name
    assert spec.system == family.system == stream.contract.system
    assert stream.contract.primary_key == ["msg_id"] and stream.contract.cursor_field == "received_at"
    assert family.kinds <= set(stream.contract.field("kind").checks.allowed or [])
    for f in stream.contract.direct_fields():  # raw identifiers are pseudonymised by a shared kind
        assert f.identifier in {"household", "resident", "nonmotor_tag", "home_device", "wristband"}


@pytest.mark.parametrize("name", MQTT_STREAMS)
def test_clean_messages_extract_whole_and_pass_validation(hub: Settings, fleet: DeviceFleet, name: str) -> None:
    messages = stream_messages(fleet, name, DeviceFaults.none())
    assert messages
    raw = extract(hub, name, land_messages(hub, messages))
    assert raw.column("msg_id").to_pylist() == [m.msg_id for m in messages]  # by receive time
    assert raw.column(EXTRA_COLUMN).null_count == raw.num_rows  # the contract knows every field
    assert set(raw.column("community_id").to_pylist()) == {hub.community_id}
    outcome = validate_batch(make_stream(name, hub).contract, raw)
    assert outcome.rejected.num_rows == 0, outcome.reasons()
    assert outcome.good.num_rows == len(messages) and outcome.duplicates_dropped == 0


@pytest.mark.parametrize("name", MQTT_STREAMS)
def test_every_faulty_message_is_quarantined_or_dropped_as_a_duplicate(
    hub: Settings, fleet: DeviceFleet, name: str
) -> None:
    messages = stream_messages(fleet, name, VALUE_FAULTS, hours=6)
    faults = Counter(m.fault for m in messages)
    raw = extract(hub, name, land_messages(hub, messages))
    outcome = validate_batch(make_stream(name, hub).contract, raw)
    assert outcome.rejected.num_rows == sum(faults[k] for k in BAD) > 0
    assert outcome.duplicates_dropped == faults["duplicate"] // 2  # a resend keeps its msg_id
    good_ids = set(outcome.good.column("msg_id").to_pylist())
    assert good_ids == {m.msg_id for m in messages if m.fault not in BAD}  # out of order: kept
    reasons = " ".join(outcome.reasons())
    assert "out of range" in reasons or "not one of the allowed values" in reasons
    if faults["malformed_payload"]:
        assert "payload is not JSON" in reasons  # a truncated payload is refused as what it is (D9)


def test_an_unreadable_payload_is_quarantined_as_such_and_a_huge_value_is_cut(
    hub: Settings, fleet: DeviceFleet
) -> None:
    # D9: a payload that is not JSON was quarantined as "event_time: is missing"; a 1 MB
    # value was stored whole in quarantine.
    good = stream_messages(fleet, "environment", DeviceFaults.none(), hours=1)[:3]
    broken = replace(good[0], msg_id="x1", payload=b'{"msg_id": "x1", "pm25": 1')
    listed = replace(good[0], msg_id="x2", payload=b"[1, 2]")
    huge = replace(good[1], msg_id="x3", payload={**good[1].payload, "msg_id": "x3", "pm25": "9" * 1_000_000})  # type: ignore[dict-item]
    raw = extract(hub, "environment", land_messages(hub, [*good, broken, listed, huge]))
    outcome = validate_batch(make_stream("environment", hub).contract, raw)
    assert outcome.good.num_rows == 3
    assert outcome.reasons() == {
        "payload is not JSON": 1,
        "payload is not a JSON object": 1,
        "pm25: is not plain text or is too long": 1,
    }
    kept = max(len(v or "") for c in outcome.rejected.columns for v in c.to_pylist() if isinstance(v, str))
    assert kept < 1000


@pytest.mark.parametrize("name", MQTT_STREAMS)
def test_schema_drift_follows_the_contracts_rule_and_is_reported(hub: Settings, fleet: DeviceFleet, name: str) -> None:
    faults = DeviceFaults.only_drift({name: "added"}, 0.5)
    messages = stream_messages(fleet, name, faults)
    drifted = {m.msg_id for m in messages if m.drift}
    contract = make_stream(name, hub).contract
    outcome = validate_batch(contract, extract(hub, name, land_messages(hub, messages)))
    assert outcome.drift == ["fw_version"]
    quarantined = set(outcome.rejected.column("msg_id").to_pylist())
    if contract.evolution == "evolve":
        assert quarantined == set() and outcome.good.num_rows == len(messages)
    else:
        assert quarantined == drifted
        assert set(outcome.reasons()) == {"schema drift: unexpected field(s) fw_version"}


def test_a_renamed_or_retyped_field_is_quarantined_even_where_fields_may_be_added(
    hub: Settings, fleet: DeviceFleet
) -> None:
    contract = make_stream("environment", hub).contract
    assert contract.evolution == "evolve"
    for kind, reason in (("renamed", "pm25: is missing"), ("retyped", "pm25: not a valid float64")):
        faults = DeviceFaults.only_drift({"environment": kind}, 0.34)
        messages = stream_messages(fleet, "environment", faults, hours=1)
        outcome = validate_batch(contract, extract(hub, "environment", land_messages(hub, messages)))
        assert set(outcome.rejected.column("msg_id").to_pylist()) == {m.msg_id for m in messages if m.drift}
        assert set(outcome.reasons()) == {reason}


@pytest.mark.slow
def test_every_stream_end_to_end_through_a_broker_without_leaking_identifiers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    hub = make_settings(tmp_path / "hub")
    init_keys(hub)
    migrate(hub.control_url)
    community = Community(seed=7, households_count=120)
    with Broker(tmp_path / "broker") as broker:
        config = MqttSettings(port=broker.port, protocol=broker.protocol, batch_max_ms=200)  # type: ignore[arg-type]
        with BackgroundCollector(hub, config) as collector:
            start = datetime.now(UTC)
            sent = publish_range(
                broker.host, broker.port, SIM_START, SIM_START + timedelta(hours=3), community,
                DeviceFaults(disconnect_every=2000), protocol=broker.protocol,
            )  # fmt: skip
            assert collector.wait_until(lambda s: s.received >= sent.accepted)
            end = datetime.now(UTC)
            assert collector.wait_until(lambda s: (landed_through(landing_root(hub)) or start) >= end)
    assert sent.disconnects >= 1
    for name in MQTT_STREAMS:
        summary = pipeline.run_window(hub, name, start, end)
        accepted = sent.by_stream()[name]
        assert summary["rows_in"] == accepted
        assert summary["rows_good"] + summary["rows_quarantined"] + summary["duplicates_dropped"] == accepted
        good = {m.msg_id for m in sent.sent if m.stream == name and m.fault not in BAD}
        assert summary["rows_good"] == len(good)
        assert summary["days"] == ["2026-11-20"]  # event time, not receive time, decides the day
    identifiers = [i for ids in sent.truth.values() for i in ids]
    assert len(identifiers) > 200
    with duckdb.connect(str(hub.warehouse_file), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM stg_elderly_care").fetchone()[0] > 0  # type: ignore[index]
    files = [p for folder in (landing_root(hub), hub.work_dir) for p in folder.rglob("*") if p.is_file()]
    assert any(p.name.endswith(landing.SUFFIX) for p in files)
    captured = capfd.readouterr()
    texts = [
        *texts_of_warehouse(hub.warehouse_file),
        *texts_of_lake(hub.lake_path),
        *[(str(p), p.read_bytes().decode("utf-8", "ignore")) for p in files],
        ("logs", caplog.text),
        ("stdout", captured.out),
        ("stderr", captured.err),
    ]
    assert find_leaks(identifiers, texts) == []
