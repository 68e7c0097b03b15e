"""Escalation with an injectable clock: after the deadline and not before, once; not for an
acknowledged alarm; re-published at a higher severity and told to the property manager."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from privacy.seal import RELAY_FEED, open_sealed
from relay.destinations import wait_for
from relay.run import BackgroundRelay
from relay.service import Relay
from simulator.devices_publish import publish_messages
from tests.relay.rig import START, Consumer, alarm, relay_rig, signed_ack
from warehouse.control import engine_for


class FakeClock:
    """The relay's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def set(self, now: datetime) -> None:
        with self._lock:
            self.now = now


def checked_after(relay: Relay, timeout: float = 10.0) -> bool:
    """Wait until the worker has looked at the deadlines twice more (so once after the clock moved)."""
    start = relay.stats.deadline_checks
    return wait_for(lambda: relay.stats.deadline_checks >= start + 2, timeout)


def test_escalation_fires_after_the_deadline_and_not_before(tmp_path: Path) -> None:
    deadlines = {"critical": 60.0, "high": 120.0, "medium": 600.0, "low": 600.0}
    with relay_rig(tmp_path, ack_deadline_seconds=deadlines) as rig:
        district, police = rig.consumer("district"), rig.consumer("police")
        manager = Consumer(rig.community, "neuron/music-square/property-manager/#", "test-manager")
        rig.consumers.append(manager)
        t0 = datetime(2026, 11, 20, 1, tzinfo=UTC)
        clock = FakeClock(t0)
        intrusion = alarm(rig.fleet, rig.fleet.fence[0], 1, "raised", START)  # high: 120 s
        acked = alarm(rig.fleet, rig.fleet.fence[1], 1, "raised", START)  # acknowledged in time
        with BackgroundRelay(rig.hub, clock=clock) as background:
            relay = background.relay
            publish_messages(rig.community.host, rig.community.port, [intrusion, acked])
            assert wait_for(lambda: len(district.payloads()) == 2 and len(police.payloads()) == 2, 15)
            raised = {p["device_id"]: p for p in district.payloads()}
            target, other = raised["FZ01"], raised["FZ02"]
            assert target["severity"] == "high"
            police.acknowledge(other["alarm_id"], "police/putuo/music-square/alarm-ack/{alarm_id}")
            assert wait_for(lambda: len(district.payloads()) == 3, 15)

            clock.set(t0 + timedelta(seconds=119))  # one second before the deadline
            assert checked_after(relay)
            assert len(district.payloads()) == 3 and manager.messages == []
            assert relay.lifecycles.by_id[target["alarm_id"]].state == "raised"

            clock.set(t0 + timedelta(seconds=120))  # the deadline
            assert wait_for(lambda: len(district.payloads()) == 4 and len(manager.messages) == 1, 15)
            clock.set(t0 + timedelta(hours=2))  # much later: still only once, and never the acknowledged one
            assert checked_after(relay)
        escalated = district.payloads()[-1]
        assert (escalated["alarm_id"], escalated["state"], escalated["severity"]) == (
            target["alarm_id"],
            "escalated",
            "critical",
        )
        assert escalated["escalated"] is True and escalated["actor"] == "relay"
        assert police.payloads()[-1]["state"] == "escalated"
        assert [p["state"] for p in district.payloads()].count("escalated") == 1
        notice = manager.payloads()[0]
        assert notice["alarm_id"] == target["alarm_id"] and notice["severity"] == "critical"


def test_an_alarm_escalated_after_a_restart_still_carries_the_police_s_sealed_ids(tmp_path: Path) -> None:
    """Raw identifiers live only in the relay's memory; what the police are entitled to is kept
    sealed with the alarm, so an escalation by the next run of the relay carries it too."""
    deadlines = {"critical": 60.0, "high": 120.0, "medium": 600.0, "low": 600.0}
    with relay_rig(tmp_path, ack_deadline_seconds=deadlines) as rig:
        police = rig.consumer("police")
        detector = rig.fleet.detectors[0]
        t0 = datetime(2026, 11, 20, 1, tzinfo=UTC)
        clock = FakeClock(t0)
        with BackgroundRelay(rig.hub, clock=clock):
            publish_messages(rig.community.host, rig.community.port, [alarm(rig.fleet, detector, 1, "raised", START)])
            assert wait_for(lambda: len(police.payloads()) == 1, 15)
        raised = police.payloads()[0]
        assert set(raised["sealed"]) == {"device_id", "household_id"}

        clock.set(t0 + timedelta(seconds=61))  # past the critical deadline, in the next run
        with BackgroundRelay(rig.hub, clock=clock) as background:
            assert background.relay.lifecycles.by_id[raised["alarm_id"]].raw == {}  # nothing raw survived
            assert wait_for(lambda: len(police.payloads()) == 2, 15)
        escalated = police.payloads()[-1]
        assert (escalated["alarm_id"], escalated["state"]) == (raised["alarm_id"], "escalated")
        assert escalated["sealed"] == raised["sealed"]
        opened = {
            name: open_sealed(value, rig.police_key, name, consumer="public_security", feed=RELAY_FEED)
            for name, value in escalated["sealed"].items()
        }
        assert opened == {"device_id": detector.device_id, "household_id": detector.info["household_id"]}


def test_an_acknowledgement_not_signed_by_the_consumer_s_own_key_is_refused(tmp_path: Path) -> None:
    """Unsigned, signed by another consumer's key, or signed for another alarm: refused with a
    reason, and the alarm escalates at its deadline as if nobody had answered."""
    deadlines = {"critical": 60.0, "high": 120.0, "medium": 600.0, "low": 600.0}
    with relay_rig(tmp_path, ack_deadline_seconds=deadlines) as rig:
        district, police = rig.consumer("district"), rig.consumer("police")
        t0 = datetime(2026, 11, 20, 1, tzinfo=UTC)
        clock = FakeClock(t0)
        zones = rig.fleet.fence[:3]
        with BackgroundRelay(rig.hub, clock=clock) as background:
            relay = background.relay
            publish_messages(
                rig.community.host, rig.community.port, [alarm(rig.fleet, z, 1, "raised", START) for z in zones]
            )
            assert wait_for(lambda: len(police.payloads()) == 3, 15)
            ids = [p["alarm_id"] for p in police.payloads()]
            topic = "police/putuo/music-square/alarm-ack/{alarm_id}"
            police.acknowledge(ids[0], topic, body=json.dumps({"alarm_id": ids[0]}).encode())  # unsigned
            police.acknowledge(ids[1], topic, body=signed_ack(ids[1], *rig.signing_keys["district"]).encode())
            police.acknowledge(ids[2], topic, body=signed_ack(ids[0], *rig.signing_keys["public_security"]).encode())
            assert wait_for(lambda: relay.stats.acks_refused == 3, 15)
            assert all(relay.lifecycles.by_id[i].acknowledged_at is None for i in ids)

            clock.set(t0 + timedelta(seconds=120))  # the fence's (high) deadline
            assert wait_for(lambda: [p["state"] for p in district.payloads()].count("escalated") == 3, 15)
            assert 'neuron_relay_rejections_total{kind="acknowledgement"} 3.0' in relay.metrics.text()


def test_a_restarted_relay_does_not_seal_again_what_it_sealed_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealed values are kept (by a keyed hash, never the raw value) across restarts: the next run
    sends the same sealed ids for the same device without another X25519 exchange."""
    import relay.messages

    with relay_rig(tmp_path) as rig:
        police = rig.consumer("police")
        detector = rig.fleet.detectors[0]
        with BackgroundRelay(rig.hub):
            publish_messages(rig.community.host, rig.community.port, [alarm(rig.fleet, detector, 1, "raised", START)])
            assert wait_for(lambda: len(police.payloads()) == 1, 15)
        first = police.payloads()[0]["sealed"]

        def no_sealing(*_: object) -> str:
            raise AssertionError("sealed again after a restart")

        monkeypatch.setattr(relay.messages, "seal", no_sealing)
        # The detector raises again: its raw identifiers come with it and are sealed from the cache.
        again = alarm(rig.fleet, detector, 2, "raised", START + timedelta(minutes=1))
        with BackgroundRelay(rig.hub):
            publish_messages(rig.community.host, rig.community.port, [again])
            assert wait_for(lambda: len(police.payloads()) == 2, 15)
        assert police.payloads()[1]["state"] == "updated" and police.payloads()[1]["sealed"] == first
        with engine_for(rig.hub.control_url).connect() as conn:
            stored = " ".join(conn.execute(text("SELECT lookup || ' ' || sealed FROM relay_sealed")).scalars())
        assert detector.device_id not in stored and detector.info["household_id"] not in stored
