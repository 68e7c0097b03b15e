"""The MQTT collector against a private broker: land first, acknowledge after, lose nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors import collector as collector_module
from connectors import collector_landing as landing
from connectors.collector_progress import landed_through, require_landed_through
from connectors.collector_run import BackgroundCollector
from connectors.mqtt import REJECTS, hub_keys, identify, landing_root, route
from kernel.errors import IntegrityError, RetriableError
from kernel.mqtt_settings import MqttSettings
from kernel.settings import Settings
from privacy.keys import init_keys
from simulator.devices import Message
from simulator.devices_broker import Broker
from simulator.devices_publish import publish_messages
from tests.conftest import make_settings

TOPIC = "neuron/music-square/environment/ENV01/telemetry"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def hub(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path / "hub")
    init_keys(settings)
    return settings


def needs_sessions(broker: Broker) -> None:
    """Skip where the fallback broker cannot keep a session across a disconnect."""
    if not broker.keeps_sessions:
        pytest.skip(f"{broker.kind} does not keep persistent sessions across disconnects")


def config(broker: Broker, **options: object) -> MqttSettings:
    values: dict[str, object] = {"port": broker.port, "protocol": broker.protocol, "batch_max_ms": 100, **options}
    return MqttSettings(**values)  # type: ignore[arg-type]


def numbered(n: int, start: int = 0, topic: str = TOPIC) -> list[Message]:
    now = datetime.now(UTC)
    return [
        Message(now, "environment", topic, f"{i:032x}", {"msg_id": f"{i:032x}", "pm25": 30.0, "pm10": 50.0})
        for i in range(start, start + n)
    ]


def publish(broker: Broker, messages: list[Message]) -> None:
    publish_messages(broker.host, broker.port, messages, protocol=broker.protocol, timeout=30)


def landed(hub: Settings, stream: str = "environment") -> list[dict[str, object]]:
    root = landing_root(hub)
    since = datetime.now(UTC) - timedelta(hours=2)
    return landing.read_window(hub_keys(hub), root, stream, since, since + timedelta(hours=4)).to_pylist()


def test_topics_route_to_streams_and_everything_else_to_rejects() -> None:
    assert route(TOPIC, "neuron", "music-square") == ("environment", None)
    assert route("neuron/music-square/wristband/WB0A1B2C/alarm", "neuron", "music-square")[0] == "elderly_care"
    for topic in (
        "neuron/music-square/environment/ENV01/alarm",  # a kind the family does not send
        "neuron/music-square/toaster/T1/telemetry",
        "neuron/elsewhere/environment/ENV01/telemetry",
        "neuron/music-square/environment/telemetry",
    ):
        stream, problem = route(topic, "neuron", "music-square")
        assert stream == REJECTS and problem


def test_message_ids_come_from_the_payload_or_from_the_bytes_of_an_unreadable_one() -> None:
    assert identify(b"t", b'{"msg_id": "abc"}') == ("abc", None)
    first, problem = identify(b"t", b'{"msg_id": "abc", "cut off')
    assert problem == "payload is not JSON" and first == identify(b"t", b'{"msg_id": "abc", "cut off')[0]
    assert identify(b"t", b"[1, 2]")[1] == "payload is not a JSON object"
    assert identify(b"t", b'{"pm25": 1}')[1] == "payload has no msg_id"
    assert identify(b"t", b"[" * 100_000)[1] == "payload is not JSON"  # no RecursionError escapes


def test_every_message_is_landed_encrypted_and_then_acknowledged(hub: Settings, broker: Broker) -> None:
    with BackgroundCollector(hub, config(broker, batch_max_messages=500)) as collector:
        publish(broker, numbered(2000))
        assert collector.wait_until(lambda s: s.received >= 2000)
        stats = collector.stop()
    assert stats.landed == stats.acknowledged == 2000 and stats.files >= 1
    rows = landed(hub)
    assert sorted(str(r["msg_id"]) for r in rows) == [f"{i:032x}" for i in range(2000)]
    files = list(landing_root(hub).rglob(f"*{landing.SUFFIX}"))
    assert files and all(b"pm25" not in f.read_bytes() for f in files)  # sealed, not plain Parquet
    assert not list(landing_root(hub).rglob("*.tmp"))
    # Acknowledged means gone from the broker: the next run gets only what is new.
    needs_sessions(broker)
    publish(broker, numbered(1, start=5000))
    with BackgroundCollector(hub, config(broker)) as again:
        assert again.wait_until(lambda s: s.received >= 1)
        assert again.stop().received == 1


def test_a_batch_that_cannot_be_landed_is_not_acknowledged_and_comes_back(
    hub: Settings, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_sessions(broker)
    real_land = landing.land

    def disk_full(*args: object, **kwargs: object) -> list[Path]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(landing, "land", disk_full)
    failing = BackgroundCollector(hub, config(broker)).start()
    publish(broker, numbered(300))
    with pytest.raises(RuntimeError, match="stopped with an error"):
        failing.wait_until(lambda s: False, timeout=30)
    with pytest.raises(RuntimeError, match="stopped with an error"):
        failing.stop()
    assert landed(hub) == []
    monkeypatch.setattr(landing, "land", real_land)
    with BackgroundCollector(hub, config(broker)) as collector:
        assert collector.wait_until(lambda s: s.received >= 300)
    assert len({r["msg_id"] for r in landed(hub)}) == 300


def test_a_redelivery_of_a_landed_message_is_acknowledged_but_not_landed_twice(
    hub: Settings, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_sessions(broker)
    # The first run lands everything but dies before its acknowledgements reach the broker.
    first = BackgroundCollector(hub, config(broker))
    monkeypatch.setattr(collector_module, "acknowledge", lambda client, mids: None)
    with first:
        publish(broker, numbered(400))
        assert first.wait_until(lambda s: s.landed >= 400)
    monkeypatch.undo()
    with BackgroundCollector(hub, config(broker)) as second:
        assert second.wait_until(lambda s: s.received >= 400)
        stats = second.stop()
    assert stats.redeliveries_skipped == 400 and stats.landed == 0 and stats.acknowledged == 400
    assert len(landed(hub)) == 400


def test_unreadable_payloads_and_unknown_topics_land_with_a_reason(hub: Settings, broker: Broker) -> None:
    odd = [
        Message(datetime.now(UTC), "environment", TOPIC, "x", b'{"msg_id": "trunc'),
        Message(datetime.now(UTC), "environment", TOPIC, "y", {"pm25": 3}),
        Message(datetime.now(UTC), "?", "neuron/music-square/toaster/T1/telemetry", "z", {"msg_id": "z"}),
    ]
    with BackgroundCollector(hub, config(broker)) as collector:
        publish(broker, odd)
        assert collector.wait_until(lambda s: s.received >= 3)
        stats = collector.stop()
    assert (stats.unreadable, stats.unrouted) == (2, 1)
    problems = sorted(str(r["problem"]) for r in landed(hub))
    assert problems == ["payload has no msg_id", "payload is not JSON"]
    rejects = landed(hub, REJECTS)
    assert [r["problem"] for r in rejects] == ["unknown device family"] and rejects[0]["msg_id"] == "z"


def test_stopping_lands_what_is_buffered(hub: Settings, broker: Broker) -> None:
    slow = config(broker, batch_max_ms=600_000, batch_max_messages=10_000)
    collector = BackgroundCollector(hub, slow).start()
    publish(broker, numbered(150))
    assert collector.wait_until(lambda s: collector.collector.buffered >= 150)
    assert landed(hub) == []  # neither full nor old enough yet
    assert collector.stop().landed == 150
    assert len(landed(hub)) == 150


def test_a_broker_restart_mid_stream_loses_nothing(hub: Settings, broker: Broker) -> None:
    needs_sessions(broker)
    with BackgroundCollector(hub, config(broker)) as collector:
        publish(broker, numbered(500))
        assert collector.wait_until(lambda s: s.received >= 500)
        broker.restart()  # every client is cut off; the collector reconnects to its session
        publish(broker, numbered(500, start=500))
        assert collector.wait_until(lambda s: len({r["msg_id"] for r in landed(hub)}) >= 1000)
        assert collector.stats.connects >= 2
    assert len({r["msg_id"] for r in landed(hub)}) == 1000


def test_a_window_is_complete_only_once_the_collector_has_landed_past_its_end(hub: Settings, broker: Broker) -> None:
    root = landing_root(hub)
    with pytest.raises(RetriableError, match="no collector has run"):
        require_landed_through(root, datetime.now(UTC))
    with BackgroundCollector(hub, config(broker)) as collector:
        end = datetime.now(UTC)
        assert collector.wait_until(lambda s: (landed_through(root) or end) > end)
    require_landed_through(root, end)
    with pytest.raises(RetriableError, match="not yet to the window end"):
        require_landed_through(root, datetime.now(UTC) + timedelta(minutes=5))


def test_a_landed_file_that_was_altered_or_moved_does_not_decrypt(hub: Settings, broker: Broker) -> None:
    with BackgroundCollector(hub, config(broker)) as collector:
        publish(broker, numbered(10))
        assert collector.wait_until(lambda s: s.landed >= 10)
    path = next(landing_root(hub).rglob(f"*{landing.SUFFIX}"))
    moved = path.with_name("0" + path.name)
    path.rename(moved)
    with pytest.raises(IntegrityError, match="does not decrypt") as failure:
        landed(hub)
    assert "pm25" not in str(failure.value)


def test_landing_windows_past_their_retention_are_deleted(hub: Settings) -> None:
    root = landing_root(hub)
    old, new = datetime(2026, 11, 1, 3, tzinfo=UTC), datetime.now(UTC)
    for when in (old, new):
        row = ("environment", "m", TOPIC, json.dumps({"msg_id": "m"}).encode(), int(when.timestamp() * 1e6), None)
        landing.land(hub_keys(hub), root, [row], f"b{int(when.timestamp())}")
    assert landing.prune_windows(root, timedelta(hours=72)) == 1
    assert [p.name for p in (root / "environment").iterdir()] == [landing.window_of(int(new.timestamp() * 1e6))]


def test_the_collector_waits_for_a_broker_that_is_not_up_yet(hub: Settings, tmp_path: Path) -> None:
    late = Broker(tmp_path / "late")
    collector = BackgroundCollector(hub, config(late)).start(wait=False)
    late.start()
    try:
        assert collector.collector.wait_connected(30)
        publish(late, numbered(5))
        assert collector.wait_until(lambda s: s.landed >= 5)
    finally:
        collector.stop()
        late.stop()
