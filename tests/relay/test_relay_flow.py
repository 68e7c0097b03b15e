"""The relay end to end on real brokers: alarms reach both upstreams signed and minimised,
lifecycle and acknowledgements, rejections to quarantine, and no raw identifier for a
consumer not entitled to it."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from pathlib import Path

from privacy.jws import verify_json
from privacy.keys import HubKeys
from privacy.seal import RELAY_FEED, open_sealed
from relay.run import BackgroundRelay
from relay.store import RelayStore
from simulator.devices_publish import publish_messages
from tests.leaks import find_leaks, texts_of_messages
from tests.relay.rig import START, Consumer, alarm, alarm_load, free_port, in_order, relay_rig
from warehouse.alarm_history import alarm_list


def test_alarms_reach_both_upstreams_signed_minimised_and_in_order(tmp_path: Path) -> None:
    metrics_port = free_port()
    with relay_rig(tmp_path, metrics_port=metrics_port) as rig:
        district, police = rig.consumer("district"), rig.consumer("police")
        quarantine = Consumer(rig.community, "neuron/music-square/relay/quarantine", "test-quarantine")
        rig.consumers.append(quarantine)
        messages = alarm_load(rig.fleet, 400)
        with BackgroundRelay(rig.hub) as relay:
            sent = publish_messages(rig.community.host, rig.community.port, messages)
            assert sent.accepted == 400
            assert relay.wait_until(lambda s: s.recorded == 400)
            events = {m.msg_id for m in messages}
            assert len(events) == 400
            assert wait(lambda: len(set(district.event_ids())) == 400 and len(set(police.event_ids())) == 400)
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
        assert "neuron_relay_latency_seconds_bucket" in metrics and "neuron_relay_outbox_depth" in metrics
        assert RelayStore(rig.hub.control_url).depth() == 0

        # Signed by the hub (verifiable with its JWKS), each carrying what a consumer needs.
        jwks = HubKeys.load(rig.hub).jwks()
        for _, raw in district.messages[:20] + police.messages[:20]:
            payload = verify_json(raw.decode(), jwks)
            assert {"alarm_id", "event_id", "state", "severity", "policy", "relay_rules"} <= set(payload)
        assert in_order(district.payloads()) and in_order(police.payloads())

        # District: building level; police: unit level plus the in-home device sealed to its key.
        d_home = [p for p in district.payloads() if p["family"] == "home-safety"]
        p_home = [p for p in police.payloads() if p["family"] == "home-safety"]
        assert d_home and all(set(p["location"]) == {"community_id", "building"} for p in d_home)
        assert all("device_id" not in p and "sealed" not in p for p in d_home)
        assert all(set(p["location"]) == {"community_id", "building", "unit"} for p in p_home)
        opened = {
            open_sealed(
                p["sealed"]["device_id"], rig.police_key, "device_id", consumer="public_security", feed=RELAY_FEED
            )
            for p in p_home
        }
        assert opened <= {d.device_id for d in rig.fleet.detectors}

        # No raw identifier reaches the district (not entitled); the police get them only sealed.
        truth = {v for values in rig.fleet.ground_truth().values() for v in values}
        assert find_leaks(truth, texts_of_messages([m for _, m in district.messages], "district")) == []
        assert find_leaks(truth, texts_of_messages([m for _, m in police.messages], "police")) == []
        assert quarantine.messages == []


def wait(condition: object, timeout: float = 30.0) -> bool:
    from relay.destinations import wait_for

    return wait_for(condition, timeout)  # type: ignore[arg-type]


def test_flapping_collapses_and_acknowledgements_come_back(tmp_path: Path) -> None:
    with relay_rig(tmp_path) as rig:
        district, police = rig.consumer("district"), rig.consumer("police")
        detector = rig.fleet.detectors[0]
        flaps = []
        for n in range(4):  # raised and cleared four times within a minute: one alarm
            at = START + timedelta(seconds=20 * n)
            flaps += [alarm(rig.fleet, detector, n, "raised", at), alarm(rig.fleet, detector, n, "cleared", at)]
        with BackgroundRelay(rig.hub) as relay:
            publish_messages(rig.community.host, rig.community.port, flaps)
            assert relay.wait_until(lambda s: s.recorded == 8)
            assert wait(lambda: len(district.payloads()) == 8)
            states = [p["state"] for p in district.payloads()]
            assert states == ["raised", "cleared", "updated", "cleared", "updated", "cleared", "updated", "cleared"]
            assert len({p["alarm_id"] for p in district.payloads()}) == 1

            fence = rig.fleet.fence[0]
            publish_messages(rig.community.host, rig.community.port, [alarm(rig.fleet, fence, 1, "raised", START)])
            assert wait(lambda: len(police.payloads()) == 9)
            alarm_id = police.payloads()[-1]["alarm_id"]
            police.acknowledge(alarm_id, "police/putuo/music-square/alarm-ack/{alarm_id}")
            assert wait(lambda: len(district.payloads()) == 10)
            ack = district.payloads()[-1]
            expected = (alarm_id, "acknowledged", "consumer:public_security")
            assert (ack["alarm_id"], ack["state"], ack["actor"]) == expected
        listed = alarm_list(rig.hub)
        assert listed[0]["alarm_id"] == alarm_id
        assert listed[0]["acknowledged_by"] == "public_security" and listed[0]["response_seconds"] is not None
        assert {"unit", "room_no", "device_id"}.isdisjoint(listed[0])
        home = next(a for a in listed if a["category"] == "smoke")
        assert home["state"] == "cleared"


def test_malformed_oversized_and_tampered_alarms_are_quarantined_and_the_relay_carries_on(tmp_path: Path) -> None:
    with relay_rig(tmp_path, max_payload_bytes=1024) as rig:
        district = rig.consumer("district")
        quarantine = Consumer(rig.community, "neuron/music-square/relay/quarantine", "test-quarantine")
        rig.consumers.append(quarantine)
        fence, detector = rig.fleet.fence[1], rig.fleet.detectors[1]
        good = alarm(rig.fleet, fence, 1, "raised", START)
        truncated = alarm(rig.fleet, fence, 2, "raised", START)
        truncated.payload = truncated.body()[:40]
        oversized = alarm(rig.fleet, fence, 3, "raised", START, alarm_type="intrusion")
        oversized.payload = {**oversized.payload, "alarm_id": "A" * 2000}  # type: ignore[dict-item]
        other_device = alarm(rig.fleet, detector, 4, "raised", START)
        other_device.payload = {**other_device.payload, "device_id": rig.fleet.detectors[2].device_id}  # type: ignore[dict-item]
        injected = alarm(rig.fleet, detector, 5, "raised", START, note="room 1201, 张三")
        bad_value = alarm(rig.fleet, detector, 6, "raised", START)
        bad_value.payload = {**bad_value.payload, "building": "one"}  # type: ignore[dict-item]
        after = alarm(rig.fleet, fence, 7, "raised", START + timedelta(hours=3))
        messages = [good, truncated, oversized, other_device, injected, bad_value, after]
        with BackgroundRelay(rig.hub) as relay:
            publish_messages(rig.community.host, rig.community.port, messages)
            assert relay.wait_until(lambda s: s.received == 7), relay.stats
            assert wait(lambda: len(quarantine.messages) == 5 and len(district.payloads()) >= 2)
            assert relay.stats.rejected == 5
        notices = [json.loads(t) for _, m in quarantine.messages for w, t in texts_of_messages([m]) if "signed" in w]
        kinds = [n["rejected"] for n in notices]
        assert sorted(kinds) == ["malformed", "malformed", "oversized", "tampered", "tampered"]
        assert all(n["reason"] for n in notices)
        # The reasons name fields, never values: nothing of the payloads is echoed.
        text = json.dumps(notices, ensure_ascii=False)
        assert "张三" not in text and "1201" not in text and detector.device_id not in text
        # Still open, the fence zone's later raise continues its alarm: the relay carried on.
        assert [p["state"] for p in district.payloads()] == ["raised", "updated"]
