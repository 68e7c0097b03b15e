"""The relay split across shards (processes in production; threads of one process here): every
alarm relayed by exactly one shard, in order per device, each shard's outbox its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.run import BackgroundRelay
from relay.service import Relay
from relay.store import RelayStore
from simulator.devices_publish import publish_messages
from tests.relay.rig import alarm, alarm_load, in_order, relay_config, relay_rig
from tests.relay.test_relay_durability import RelayProcess
from tests.relay.test_relay_flow import wait


def test_every_device_and_every_bad_topic_belongs_to_exactly_one_shard(tmp_path: Path) -> None:
    with relay_rig(tmp_path) as rig:
        shards = [Relay(rig.hub, relay_config(rig.district, rig.police, shards=3, shard=k)) for k in range(3)]
        devices = [*rig.fleet.detectors[:60], *rig.fleet.wristbands[:30], *rig.fleet.fence, *rig.fleet.covers]
        topics = [d.topic(rig.fleet.community_id, "alarm") for d in devices]
        topics += ["neuron/music-square/no-such-family/x/alarm", "neuron/music-square/fence/alarm", "a/b"]
        owners = [[k for k, relay in enumerate(shards) if relay.owns(t)] for t in topics]
        assert all(len(o) == 1 for o in owners)
        assert {o[0] for o in owners} == {0, 1, 2}  # the hash spreads devices over every shard
        # Stored ids (the in-home device's token) assign an alarm loaded at start-up to the same shard.
        for device, topic in zip(devices, topics, strict=False):
            token = shards[0].device_token(device.family, device.device_id)
            assert [k for k, r in enumerate(shards) if r.owns_device(token)] == [
                k for k, r in enumerate(shards) if r.owns(topic)
            ]
        # Each shard has its own sessions and outbox rows.
        assert len({r.config.community_client_id(r.community_id) for r in shards}) == 3
        assert len({r.outbox_of["district"] for r in shards}) == 3


@pytest.mark.slow
def test_two_shards_relay_every_alarm_once_and_in_order_per_device(tmp_path: Path) -> None:
    with relay_rig(tmp_path) as rig:
        district, police = rig.consumer("district"), rig.consumer("police")
        messages = alarm_load(rig.fleet, 300)
        bad = alarm(rig.fleet, rig.fleet.fence[0], 999, "raised", messages[0].publish_at, unexpected="x")
        relays = [BackgroundRelay(rig.hub, relay_config(rig.district, rig.police, shards=2, shard=k)) for k in range(2)]
        for r in relays:
            r.start()
        try:
            sent = publish_messages(rig.community.host, rig.community.port, [*messages, bad])
            assert sent.accepted == 301
            assert wait(lambda: sum(r.stats.recorded for r in relays) == 300)
            assert wait(lambda: len(set(district.event_ids())) == 300 and len(set(police.event_ids())) == 300)
            assert wait(lambda: sum(r.stats.rejected for r in relays) == 1)
        finally:
            stats = [r.stop() for r in relays]
        assert all(s.recorded > 50 for s in stats)  # both shards did a share of the work
        assert sum(s.duplicates for s in stats) == 0
        # Exactly once each (no redelivery happened here), in order per device and per alarm.
        assert len(district.event_ids()) == 300 and len(police.event_ids()) == 300
        assert in_order(district.payloads()) and in_order(police.payloads())
        assert RelayStore(rig.hub.control_url).depth() == 0


@pytest.mark.slow
def test_neuron_relay_runs_a_process_per_shard_and_stops_them_all(tmp_path: Path) -> None:
    with relay_rig(tmp_path, shards=2) as rig:
        district = rig.consumer("district")
        relay = RelayProcess(rig.hub)
        mark = relay.log.read_text().count("subscribed to the community") if relay.log.exists() else 0
        relay.start()  # returns once a shard is subscribed; wait for the other
        assert wait(lambda: relay.log.read_text().count("subscribed to the community") >= mark + 2)
        messages = alarm_load(rig.fleet, 60)
        assert publish_messages(rig.community.host, rig.community.port, messages).accepted == 60
        assert wait(lambda: len(set(district.event_ids())) == 60)
        assert relay.stop() == 0
        log = relay.log.read_text()
        assert "shard 1 of 2" in log and "shard 2 of 2" in log and log.count("relay: stopped") == 2
        assert RelayStore(rig.hub.control_url).depth() == 0
