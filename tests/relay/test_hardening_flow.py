"""Issue 17, the relay's part, through real brokers: acknowledgements that are fresh, bounded,
never replayed and refused the moment their key is revoked; a re-raised alarm escalates again;
a late "raised" does not reopen a cleared alarm (D7); an alarm from a device id that spans
topic levels reaches quarantine, counted, instead of vanishing (D8)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from api.consumers import revoke_key
from relay.destinations import wait_for
from relay.run import BackgroundRelay
from simulator.devices_publish import publish_messages
from tests.leaks import texts_of_messages
from tests.relay.rig import START, Consumer, alarm, relay_rig, signed_ack
from tests.relay.test_escalation import FakeClock, checked_after

DEADLINES = {"critical": 60.0, "high": 120.0, "medium": 600.0, "low": 600.0}
ACK_TOPIC = "police/putuo/music-square/alarm-ack/{alarm_id}"


def test_acknowledgements_are_fresh_bounded_unreplayable_and_die_with_their_key(tmp_path: Path) -> None:
    with relay_rig(tmp_path, ack_deadline_seconds=DEADLINES) as rig:
        police = rig.consumer("police")
        kid, key = rig.signing_keys["public_security"]
        t0 = datetime(2026, 11, 20, 1, tzinfo=UTC)
        clock = FakeClock(t0)
        zones = rig.fleet.fence[:4]
        with BackgroundRelay(rig.hub, clock=clock) as background:
            relay = background.relay
            publish_messages(
                rig.community.host, rig.community.port, [alarm(rig.fleet, z, 1, "raised", START) for z in zones]
            )
            assert wait_for(lambda: len(police.payloads()) == 4, 15)
            # Fence zones are public devices: the relay keys their alarms by their own ids.
            a, b, c, d = (relay.lifecycles.by_key[(z.device_id, "fence_intrusion")].alarm_id for z in zones)

            # Stale (iat ten minutes old), oversized, and without a jti: refused.
            police.acknowledge(a, ACK_TOPIC, body=signed_ack(a, kid, key, iat=time.time() - 600).encode())
            police.acknowledge(a, ACK_TOPIC, body=signed_ack(a, kid, key).encode() + b" " * 4096)
            police.acknowledge(a, ACK_TOPIC, body=signed_ack(a, kid, key, jti="x" * 500).encode())
            assert wait_for(lambda: relay.stats.acks_refused == 3, 15)
            assert relay.lifecycles.by_id[a].acknowledged_at is None

            # A good one is honoured; the same message again (a replay) is refused.
            good = signed_ack(b, kid, key).encode()
            police.acknowledge(b, ACK_TOPIC, body=good)
            assert wait_for(lambda: relay.lifecycles.by_id[b].acknowledged_at is not None, 15)
            # B clears and is raised again inside the flap window: the replayed ack must not stick.
            zone_b = zones[1]
            publish_messages(
                rig.community.host,
                rig.community.port,
                [
                    alarm(rig.fleet, zone_b, 1, "cleared", START + timedelta(seconds=10)),
                    alarm(rig.fleet, zone_b, 2, "raised", START + timedelta(seconds=20)),
                ],
                client_id="devices-2",
            )
            assert wait_for(lambda: relay.lifecycles.by_id[b].state == "updated", 15)
            assert relay.lifecycles.by_id[b].acknowledged_at is None  # not inherited
            police.acknowledge(b, ACK_TOPIC, body=good)
            assert wait_for(lambda: relay.stats.acks_refused == 4, 15)
            assert relay.lifecycles.by_id[b].acknowledged_at is None

            # Revoked: refused at once, not after a cache's minute.
            police.acknowledge(c, ACK_TOPIC, body=signed_ack(c, kid, key).encode())
            assert wait_for(lambda: relay.lifecycles.by_id[c].acknowledged_at is not None, 15)
            revoke_key(rig.hub, kid)
            police.acknowledge(d, ACK_TOPIC, body=signed_ack(d, kid, key).encode())
            assert wait_for(lambda: relay.stats.acks_refused == 5, 15)
            assert relay.lifecycles.by_id[d].acknowledged_at is None

            clock.set(t0 + timedelta(seconds=120))  # the fence's deadline: all but C escalate
            assert checked_after(relay)
            assert wait_for(lambda: {i for i, x in relay.lifecycles.by_id.items() if x.escalated} == {a, b, d}, 15), {
                i: x.state for i, x in relay.lifecycles.by_id.items()
            }


def test_a_late_raise_after_the_clear_does_not_reopen_the_alarm(tmp_path: Path) -> None:
    """D7 end to end: the clear (device time 10 s) arrives first, the raise of 5 s after it."""
    with relay_rig(tmp_path, ack_deadline_seconds=DEADLINES) as rig:
        district = rig.consumer("district")
        zone = rig.fleet.fence[0]
        t0 = datetime(2026, 11, 20, 1, tzinfo=UTC)
        clock = FakeClock(t0)
        with BackgroundRelay(rig.hub, clock=clock) as background:
            relay = background.relay
            publish_messages(
                rig.community.host,
                rig.community.port,
                [
                    alarm(rig.fleet, zone, 1, "raised", START),
                    alarm(rig.fleet, zone, 1, "cleared", START + timedelta(seconds=10)),
                ],
            )
            assert wait_for(lambda: len(district.payloads()) == 2, 15)
            late = alarm(rig.fleet, zone, 2, "raised", START + timedelta(seconds=5))
            publish_messages(rig.community.host, rig.community.port, [late], client_id="late-device")
            assert wait_for(lambda: relay.stats.stale == 1, 15)
            clock.set(t0 + timedelta(hours=1))
            assert checked_after(relay)
        assert [p["state"] for p in district.payloads()] == ["raised", "cleared"]
        assert 'neuron_relay_inbound_messages_total{outcome="stale"} 1.0' in relay.metrics.text()


def test_an_alarm_from_a_device_id_spanning_topic_levels_is_quarantined_and_counted(tmp_path: Path) -> None:
    """D8: `neuron/c/fence/FZ01/x/alarm` matches no consumer's filter; the relay sees it, says why."""
    with relay_rig(tmp_path) as rig:
        quarantine = Consumer(rig.community, "neuron/music-square/relay/quarantine", "test-quarantine")
        rig.consumers.append(quarantine)
        zone = rig.fleet.fence[0]
        m = alarm(rig.fleet, zone, 1, "raised", START)
        device = zone.device_id + "/evil"
        body = json.dumps(
            {
                **m.payload,  # type: ignore[dict-item]
                "device_id": device,
            }
        ).encode()
        with BackgroundRelay(rig.hub) as relay:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="slashed", protocol=mqtt.MQTTv5)
            client.connect(rig.community.host, rig.community.port)
            client.loop_start()
            try:
                client.publish(f"neuron/music-square/fence/{device}/alarm", body, qos=1).wait_for_publish(10)
                # Telemetry on an over-long topic is the collector's: acknowledged, not quarantined.
                client.publish(f"neuron/music-square/fence/{device}/telemetry", b"{}", qos=1).wait_for_publish(10)
            finally:
                client.disconnect()
                client.loop_stop()
            assert relay.wait_until(lambda s: s.unsafe_names == 1), relay.stats
            assert wait_for(lambda: len(quarantine.messages) == 1, 15)
            assert relay.stats.rejected == 1
            assert 'neuron_relay_rejections_total{kind="unsafe"} 1.0' in relay.relay.metrics.text()
        (notice,) = [json.loads(t) for _, m in quarantine.messages for w, t in texts_of_messages([m]) if "signed" in w]
        assert notice["rejected"] == "unsafe" and "device_id" in notice["reason"]
        assert "evil" not in json.dumps(notice)
