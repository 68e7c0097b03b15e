"""Alarms from the real relay (three mosquitto brokers, tests/relay/rig.py) to the NGSI-LD peer:
the relay writes each lifecycle state into its `ngsi-ld:district` outbox in its group commit,
`neuron push`'s alert thread upserts them as Alert entities under the district's policy."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from kernel.push_settings import NgsiLdPush, PushSettings
from peers.ngsi_ld.service import run_push
from relay.destinations import wait_for
from relay.run import BackgroundRelay
from simulator.devices_publish import publish_messages
from simulator.ngsi_broker import BrokerConfig, start_broker
from tests.leaks import find_leaks
from tests.relay.rig import alarm_load, relay_rig
from warehouse.alarm_history import alarm_list

pytestmark = pytest.mark.slow


def test_relayed_alarms_become_alert_entities_without_identifiers(tmp_path: Path) -> None:
    with relay_rig(tmp_path) as rig, start_broker(BrokerConfig(fail_fraction=0.1)) as broker:
        target = NgsiLdPush(name="district", broker_url=broker.url, backoff_seconds=0.01, max_attempts=10)
        rig.hub.push = PushSettings(ngsi_ld=[target.model_copy(update={"feeds": []})])
        messages = alarm_load(rig.fleet, 60)
        stop = threading.Event()
        pusher = threading.Thread(target=run_push, args=(rig.hub, stop), daemon=True)
        with BackgroundRelay(rig.hub) as relay:
            pusher.start()
            assert publish_messages(rig.community.host, rig.community.port, messages).accepted == 60
            assert relay.wait_until(lambda s: s.recorded == 60)

            # Each alarm's Alert entity, in the state the relay holds it in (as committed).
            def relayed() -> dict[str, str]:
                return {f"urn:ngsi-ld:Alert:music-square:{a['alarm_id']}": a["state"] for a in alarm_list(rig.hub)}

            def alerts() -> dict[str, str]:
                found = list(broker.state.entities.values())
                return {e["id"]: e["data"]["state"] for e in found if e["type"] == "Alert"}

            assert wait_for(lambda: len(relayed()) == 60 and alerts() == relayed(), 30)
            states = relayed()
        stop.set()
        pusher.join(10)
        found = [e for e in broker.state.entities.values() if e["type"] == "Alert"]
        assert len(found) == len(states) > 0
        assert all("unit" not in a["data"] and "roomNo" not in a["data"] for a in found)  # building level
        truth = {v for values in rig.fleet.ground_truth().values() for v in values}
        assert find_leaks(truth, [("broker", json.dumps(found, ensure_ascii=False))]) == []
        assert broker.stats()["entity_errors"] > 0  # some were failed by the broker and sent again
