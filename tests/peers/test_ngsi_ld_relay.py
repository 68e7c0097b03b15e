"""Alarms from the real relay (three mosquitto brokers, tests/relay/rig.py) to the NGSI-LD peer:
the relay writes each lifecycle state into its `ngsi-ld:district` outbox in its group commit,
`neuron push`'s alert thread upserts them as Alert entities under the district's policy."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from kernel.push_settings import NgsiLdPush, PushSettings
from kernel.settings import REPO_ROOT
from peers.ngsi_ld.service import run_push
from privacy.policy import RELAY_IN_HOME, load_policies
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
        # The shipped policies, but the district's alarm records of smoke and gas on vital interest
        # (shipped: on consent, and no household of the rig has consented).
        policies = tmp_path / "policies"
        shutil.copytree(REPO_ROOT / "config" / "policies", policies)
        district = yaml.safe_load((policies / "district.yaml").read_text(encoding="utf-8"))
        district["feeds"]["safety.alarms"]["basis"] = {"smoke": "vital_interest", "gas": "vital_interest"}
        (policies / "district.yaml").write_text(yaml.safe_dump(district, allow_unicode=True), encoding="utf-8")
        rig.hub.policies_dir = policies
        rig.hub.push = PushSettings(ngsi_ld=[target.model_copy(update={"feeds": []})])
        messages = alarm_load(rig.fleet, 60)
        stop = threading.Event()
        pusher = threading.Thread(target=run_push, args=(rig.hub, stop), daemon=True)
        with BackgroundRelay(rig.hub) as relay:
            pusher.start()
            assert publish_messages(rig.community.host, rig.community.port, messages).accepted == 60
            assert relay.wait_until(lambda s: s.recorded == 60)

            # Each alarm the district's policy lets go (issue 16 item 3: an in-home category on
            # consent only from a household that opted in — none has here), as an Alert entity in
            # the state the relay holds it in (as committed).
            policy = load_policies(rig.hub.policies_dir)["district"]

            def goes(category: str) -> bool:
                return category not in RELAY_IN_HOME or policy.feed_basis("safety.alarms", category) == "vital_interest"

            def relayed() -> dict[str, str]:
                return {
                    f"urn:ngsi-ld:Alert:music-square:{a['alarm_id']}": a["state"]
                    for a in alarm_list(rig.hub)
                    if goes(a["category"])
                }

            def alerts() -> dict[str, str]:
                found = list(broker.state.entities.values())
                return {e["id"]: e["data"]["state"] for e in found if e["type"] == "Alert"}

            assert wait_for(lambda: len(alarm_list(rig.hub)) == 60 and alerts() == relayed(), 30)
            states = relayed()
        stop.set()
        pusher.join(10)
        found = [e for e in broker.state.entities.values() if e["type"] == "Alert"]
        assert len(found) == len(states) > 0
        assert all("unit" not in a["data"] and "roomNo" not in a["data"] for a in found)  # building level
        truth = {v for values in rig.fleet.ground_truth().values() for v in values}
        assert find_leaks(truth, [("broker", json.dumps(found, ensure_ascii=False))]) == []
        assert broker.stats()["entity_errors"] > 0  # some were failed by the broker and sent again
