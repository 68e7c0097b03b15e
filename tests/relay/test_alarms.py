"""The alarm contract and the lifecycle, without brokers: classification, rejections with
reasons, flapping, acknowledgements and deadlines (an explicit clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from relay.alarms import Rejection, parse_alarm
from relay.lifecycle import Lifecycles, alarm_id
from simulator.community import Community
from simulator.devices import DeviceFleet
from tests.relay.rig import START, alarm

FLEET = DeviceFleet(Community(seed=3, households_count=150))
T0 = datetime(2026, 11, 20, 1, tzinfo=UTC)
ID_KEY = b"relay-id-key-for-tests".ljust(32, b"\0")


def parse(message: object, max_bytes: int = 4096) -> object:
    m = message
    return parse_alarm(m.topic, m.body(), "music-square", max_bytes, ID_KEY)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("device", "alarm_type", "category", "severity"),
    [
        (FLEET.detectors[0], "smoke", "smoke", "critical"),
        (next(d for d in FLEET.detectors if d.info["detector"] == "gas"), "gas", "gas", "critical"),
        (FLEET.fence[0], "intrusion", "fence_intrusion", "high"),
        (FLEET.wristbands[0], "fall", "fall", "critical"),
        (FLEET.wristbands[0], "sos", "sos", "critical"),
        (FLEET.wristbands[0], "heart_rate_high", "heart_rate", "critical"),  # the band says critical
        (FLEET.covers[0], "open", "manhole_open", "high"),  # major from the cover: high
        (FLEET.covers[0], "tilt", "manhole_tilt", "high"),
        (FLEET.covers[0], "water_level", "water_level", "high"),
    ],
)
def test_alarms_are_classified(device: object, alarm_type: str, category: str, severity: str) -> None:
    parsed = parse(alarm(FLEET, device, 1, "raised", START, alarm_type=alarm_type))  # type: ignore[arg-type]
    assert parsed is not None
    assert (parsed.category, parsed.severity) == (category, severity)  # type: ignore[attr-defined]


def test_equipment_faults_are_valid_but_not_relayed() -> None:
    for device, kind in [(FLEET.fence[0], "line_cut"), (FLEET.detectors[0], "low_battery")]:
        assert parse(alarm(FLEET, device, 1, "raised", START, alarm_type=kind)) is None


@pytest.mark.parametrize(
    ("change", "kind", "reason"),
    [
        (lambda p: b"{not json", "malformed", "payload is not JSON"),
        (lambda p: json.dumps([p]).encode(), "malformed", "payload is not a JSON object"),
        (lambda p: json.dumps({**p, "pad": "x" * 5000}).encode(), "oversized", "bytes, over the 4096-byte limit"),
        (lambda p: json.dumps({**p, "device_id": "SD000000"}).encode(), "tampered", "device_id differs"),
        (lambda p: json.dumps({**p, "community_id": "elsewhere"}).encode(), "tampered", "community_id differs"),
        (lambda p: json.dumps({**p, "phone": "13800000000"}).encode(), "tampered", "outside the home_safety contract"),
        (lambda p: json.dumps({**p, "alarm_state": "maybe"}).encode(), "malformed", "alarm_state is not an allowed"),
        (lambda p: json.dumps({**p, "event_time": "yesterday"}).encode(), "malformed", "event_time is not an ISO"),
        (lambda p: json.dumps({**p, "unit": 42}).encode(), "malformed", "unit is out of range"),
        (lambda p: json.dumps({**p, "alarm_id": None}).encode(), "malformed", "missing field alarm_id"),
    ],
)
def test_bad_alarms_are_rejected_with_a_reason_naming_no_value(change: object, kind: str, reason: str) -> None:
    m = alarm(FLEET, FLEET.detectors[0], 1, "raised", START)
    with pytest.raises(Rejection) as err:
        parse_alarm(m.topic, change(m.payload), "music-square", 4096, ID_KEY)  # type: ignore[operator]
    assert err.value.kind == kind and reason in err.value.reason
    assert FLEET.detectors[0].device_id not in str(err.value) and "13800000000" not in str(err.value)


def lifecycles() -> Lifecycles:
    return Lifecycles(
        lambda severity: {"critical": 60}.get(severity, 300), timedelta(minutes=5), lambda d: d.device_id, ID_KEY
    )


def device_event(lc: Lifecycles, n: int, state: str, seconds: int, now: datetime) -> Any:
    parsed = parse(alarm(FLEET, FLEET.fence[0], n, state, START + timedelta(seconds=seconds)))
    return lc.on_device(parsed, now)  # type: ignore[arg-type]


def test_a_flapping_detector_is_one_alarm_and_a_late_raise_is_a_new_one() -> None:
    lc = lifecycles()
    states = [
        device_event(lc, n, s, 10 * n + (s == "cleared"), T0).state for n in range(3) for s in ("raised", "cleared")
    ]
    assert states == ["raised", "cleared", "updated", "cleared", "updated", "cleared"]
    assert len(lc.by_id) == 1 and next(iter(lc.by_id.values())).updates == 2
    later = device_event(lc, 9, "raised", 3600, T0)
    assert later.state == "raised" and len(lc.by_id) == 2
    assert device_event(lc, 9, "cleared", 3601, T0) is not None
    assert device_event(lc, 9, "cleared", 3602, T0) is None  # a clear of nothing open changes nothing


def test_deadlines_escalate_once_and_not_after_an_acknowledgement() -> None:
    lc = lifecycles()
    first = device_event(lc, 1, "raised", 0, T0)
    alarm_id = first.alarm.alarm_id
    assert lc.due(T0 + timedelta(seconds=299)) == []
    escalated = lc.due(T0 + timedelta(seconds=300))
    assert [(e.state, e.alarm.severity) for e in escalated] == [("escalated", "critical")]
    assert lc.due(T0 + timedelta(hours=5)) == []
    acknowledged = lc.on_ack(alarm_id, "district", T0)
    assert acknowledged is not None and acknowledged.state == "acknowledged"
    assert lc.on_ack(alarm_id, "public_security", T0) is None  # the first acknowledgement counts


def test_the_store_writes_a_group_commit_on_sqlite_and_postgresql(control_url: str) -> None:
    from relay.store import Commit, RelayStore
    from warehouse.migrations import migrate

    migrate(control_url)
    store = RelayStore(control_url)
    lc = lifecycles()
    event = device_event(lc, 1, "raised", 0, T0)
    assert event is not None
    commit = Commit(seen=[{"msg_key": "k1", "seen_at": T0}], events=[event.row()])
    commit.alarm(event.alarm, is_new=True)
    commit.outbox = [
        {"destination": d, "topic": "t", "payload": "p", "alarm_id": event.alarm.alarm_id, "created_at": T0}
        for d in ("district", "public_security", "district")
    ]
    written = store.write(commit)
    assert [d for d, _ in written] == ["district", "public_security", "district"]
    seqs = [row.seq for _, row in written]
    assert seqs == sorted(seqs) and [r.seq for r in store.pending("district", 0, 10)] == [seqs[0], seqs[2]]
    # A msg_id recorded long ago (out of the in-memory window) does not fail a later group commit.
    cleared = device_event(lc, 1, "cleared", 5, T0)
    assert cleared is not None
    later = Commit(seen=[{"msg_key": "k1", "seen_at": T0 + timedelta(days=3)}], published=seqs)
    later.alarm(cleared.alarm, is_new=False)
    store.write(later)
    assert store.depth() == 0 and store.seen_since(T0 - timedelta(days=1)) == {"k1"}
    assert [a.state for a in store.open_alarms(T0, timedelta(minutes=5))] == ["cleared"]


def test_the_first_buffered_alarm_wakes_the_worker_without_waiting_for_its_idle_poll() -> None:
    import threading
    import time

    from relay.intake import Intake

    intake: Intake[float] = Intake(lambda received: received, limit=100, age_seconds=0.0)
    taken: list[list[float]] = []
    waiting = threading.Event()

    def worker() -> None:
        waiting.set()
        taken.append(intake.take(threading.Event(), idle_seconds=3600))  # an hour: only a wake-up ends it

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    assert waiting.wait(10)
    while not intake.cond._waiters:  # type: ignore[attr-defined]  # the worker is in its (hour-long) wait
        time.sleep(0.001)
    intake.put(time.time())
    thread.join(30)
    assert not thread.is_alive() and len(taken[0]) == 1
    # A full group is taken at once, however young.
    stop = threading.Event()
    full: Intake[float] = Intake(lambda received: received, limit=2, age_seconds=3600)
    full.put(time.time())
    full.put(time.time())
    assert len(full.take(stop, idle_seconds=3600)) == 2


def test_relay_signatures_use_the_hubs_canonical_json() -> None:
    from privacy.jws import canonical_json
    from relay.messages import _CANONICAL

    value = {"b": [1, 2.5, None, True], "a": {"z": "普陀区", "y": "\u2028"}, "c": 'x"y'}
    assert _CANONICAL.encode(value).encode() == canonical_json(value)


def test_group_commit_timestamps_read_back_as_sqlalchemy_wrote_them(control_url: str) -> None:
    from sqlalchemy import select

    from relay.store import Commit, RelayStore
    from warehouse.migrations import migrate
    from warehouse.models import AlarmLifecycleEvent

    migrate(control_url)
    store = RelayStore(control_url)
    lc = lifecycles()
    at = T0 + timedelta(microseconds=123456)
    event = device_event(lc, 2, "raised", 0, at)
    assert event is not None
    commit = Commit(events=[event.row()])
    commit.alarm(event.alarm, is_new=True)
    commit.outbox = [{"destination": "d", "topic": "t", "payload": "p", "alarm_id": None, "created_at": at}]
    store.write(commit)
    (loaded,) = store.open_alarms(at, timedelta(minutes=5))
    assert loaded.detected_at == event.alarm.detected_at and loaded.raised_at == at
    assert loaded.detected_at.utcoffset() == timedelta(0)
    assert store.pending("d", 0, 10)[0].created_at == at
    with store.engine.connect() as conn:
        recorded = conn.execute(select(AlarmLifecycleEvent.recorded_at)).scalar_one()
        # Range queries on the column (the alarm_lifecycle stream loads by recorded_at) still match.
        later = select(AlarmLifecycleEvent.event_id).where(AlarmLifecycleEvent.recorded_at >= at)
        assert recorded == at and conn.execute(later).scalars().all() == [event.event_id]


def test_acknowledgements_settled_from_two_threads_are_each_reported_once() -> None:
    import threading

    import paho.mqtt.client as mqtt

    from relay.destinations import Destination
    from transport.mqtt_socket import BufferedClient

    reported: list[int] = []
    lock = threading.Lock()

    def on_published(_name: str, seqs: list[int], _created: list[float]) -> None:
        with lock:
            reported.extend(seqs)

    client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id="test-settle")
    dest = Destination("district", client, None, 100_000, on_published)  # type: ignore[arg-type]
    for round_ in range(20):
        mids = range(round_ * 2000, (round_ + 1) * 2000)
        dest._inflight.update({mid: (mid, 0.0) for mid in mids})
        dest._acked.extend(mids)
        threads = [threading.Thread(target=dest.settle) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(reported) == list(range(40_000)) and not dest._inflight


def test_alarm_ids_and_message_keys_are_keyed_hashes_of_the_raw_device_id() -> None:
    """Issue 16 item 8: an unkeyed SHA-256 of an enumerable in-home device id is that id
    (hash every id the vendor could issue and compare). Ids made from it are HMACs."""
    import hashlib

    m = alarm(FLEET, FLEET.detectors[0], 1, "raised", START)
    other_key = b"another-hub".ljust(32, b"\0")
    mine = parse_alarm(m.topic, m.body(), "music-square", 4096, ID_KEY)
    theirs = parse_alarm(m.topic, m.body(), "music-square", 4096, other_key)
    assert mine is not None and theirs is not None
    unkeyed = hashlib.sha256(f"{m.topic}\x1f{mine.source_alarm_id}".encode()).hexdigest()[:32]
    assert mine.msg_key != theirs.msg_key and unkeyed != mine.msg_key
    ids = []
    for key in (ID_KEY, other_key):
        lc = Lifecycles(lambda _: 300.0, timedelta(minutes=5), lambda d: d.device_id, key)
        event = lc.on_device(mine, T0)
        assert event is not None
        ids.append(event.alarm.alarm_id)
    text = f"{mine.community_id}\x1f{mine.family}\x1f{mine.device_id}\x1f{mine.source_alarm_id}"
    assert ids[0] != ids[1]  # the same alarm, another hub's key: nothing to link
    assert ids[0] != "ALM" + hashlib.sha256(text.encode()).hexdigest()[:21].upper()  # today's main
    assert ids[0] == alarm_id(ID_KEY, mine) and ids[0].startswith("ALM") and len(ids[0]) == 24


def test_no_identifier_is_hashed_without_a_key_in_the_relay() -> None:
    """Every hash the relay and the privacy engine take of something that can carry a raw id
    is keyed: plain SHA-256 remains only over whole payloads, file bytes and canonical policy
    text (fingerprints), never over an id, a topic or a name."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    allowed = {"item.payload", "text.encode()"}  # message bytes (relay/service.py), settings text (relay/settings.py)
    for path in [*sorted((root / "relay").glob("*.py")), root / "privacy" / "pseudonymise.py"]:
        for arg in re.findall(r"hashlib\.sha256\(((?:[^()]|\([^()]*\))*)\)", path.read_text(encoding="utf-8")):
            assert arg in allowed, f"{path.name}: unkeyed sha256({arg})"
