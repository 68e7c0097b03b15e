"""Durability on real brokers: kill -9 of the relay under load, and an upstream outage.

Every alarm the community broker accepted must reach every upstream — none lost, and after
deduplication by event id none doubled (no inbound alarm recorded twice) — in order per
device and per alarm.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kernel.settings import Settings
from relay.destinations import wait_for
from relay.run import BackgroundRelay
from relay.store import RelayStore
from simulator.devices_publish import PublishStats, publish_messages
from tests.relay.rig import Consumer, alarm_load, in_order, relay_rig
from tests.services import ServiceProcess
from warehouse.control import engine_for
from warehouse.models import AlarmLifecycleEvent

KILL_TOTAL = 2400
OUTAGE_TOTAL = 1500
# The issue asks for 30 s; the property (backlog kept, drained in order) does not depend on the
# length, only on messages arriving while the upstream is away. CI (.ci/run) sets NEURON_TEST_OUTAGE=30.
OUTAGE_SECONDS = float(os.environ.get("NEURON_TEST_OUTAGE", "4"))


def RelayProcess(hub: Settings) -> ServiceProcess:
    """`neuron relay` as a child process, killable with SIGKILL."""
    sections = {"mqtt": hub.mqtt.model_dump_json(), "relay": hub.relay.model_dump_json()}
    return ServiceProcess(hub, "relay.run", sections, ready="subscribed to the community")


def lifecycle_rows(hub: Settings) -> int:
    with engine_for(hub.control_url).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(AlarmLifecycleEvent)).scalar_one())


def assert_exactly_once(consumer: Consumer, total: int) -> None:
    """Every inbound alarm is one event at the consumer, in order; repeats only of the same event."""
    payloads = consumer.payloads()
    first = {p["event_id"]: p for p in payloads}
    assert len(first) == total
    per_alarm_state = Counter((p["alarm_id"], p["state"]) for p in first.values())
    assert max(per_alarm_state.values()) == 1  # a redelivered alarm never became a second event
    assert {p["state"] for p in first.values()} == {"raised", "cleared"}
    assert in_order(payloads)


@pytest.mark.slow
def test_kill_9_under_load_then_restart_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    with relay_rig(tmp_path) as rig:
        district, police = rig.consumer("district"), rig.consumer("police")
        relay = RelayProcess(rig.hub)
        relay.start()
        published: list[PublishStats] = []
        messages = alarm_load(rig.fleet, KILL_TOTAL)

        def send() -> None:
            published.append(publish_messages(rig.community.host, rig.community.port, messages, rate=500))

        sender = threading.Thread(target=send)
        sender.start()
        for received_before_kill in (600, 1500):
            assert wait_for(lambda n=received_before_kill: len(district.messages) >= n, 60)  # type: ignore[misc]
            relay.kill()  # mid-stream: a group commit in flight, outbox rows published but not deleted
            relay.start()
        sender.join(timeout=60)
        assert published and published[0].accepted == KILL_TOTAL
        for consumer in (district, police):
            assert wait_for(lambda c=consumer: len(set(c.event_ids())) >= KILL_TOTAL, 60)  # type: ignore[misc]
        assert relay.stop() == 0  # SIGTERM: graceful
        for consumer in (district, police):
            assert_exactly_once(consumer, KILL_TOTAL)
        assert lifecycle_rows(rig.hub) == KILL_TOTAL
        assert RelayStore(rig.hub.control_url).depth() == 0
        log = relay.log.read_text()
        assert all(d.device_id not in log for d in rig.fleet.detectors)  # no identifiers in the logs


@pytest.mark.slow
def test_an_upstream_outage_is_ridden_out_and_the_backlog_arrives_in_order(tmp_path: Path) -> None:
    with relay_rig(tmp_path) as rig:
        district, police = rig.consumer("district"), rig.consumer("police")
        published: list[PublishStats] = []
        depth_during_outage: list[int] = []
        messages = alarm_load(rig.fleet, OUTAGE_TOTAL)
        with BackgroundRelay(rig.hub) as relay:
            store = RelayStore(rig.hub.control_url)

            def send() -> None:
                published.append(publish_messages(rig.community.host, rig.community.port, messages, rate=250))

            sender = threading.Thread(target=send)
            sender.start()
            assert wait_for(lambda: len(police.messages) >= 200, 30)
            rig.police.stop()
            outage_started = relay.stats.recorded
            time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for a result
            depth_during_outage.append(store.depth_by_destination().get("public_security", 0))
            recorded_during_outage = relay.stats.recorded - outage_started
            rig.police.start()
            sender.join(timeout=60)
            assert published and published[0].accepted == OUTAGE_TOTAL
            for consumer in (district, police):
                assert wait_for(lambda c=consumer: len(set(c.event_ids())) >= OUTAGE_TOTAL, 60)  # type: ignore[misc]
            reconnects = relay.relay.metrics.reconnects.labels("public_security")._value.get()
        assert recorded_during_outage > 0 and depth_during_outage[0] > 0  # alarms kept coming: a backlog
        assert reconnects >= 2
        for consumer in (district, police):
            assert_exactly_once(consumer, OUTAGE_TOTAL)
