"""The relay follows `neuron keys rotate` without a restart (issue 17): alarms relayed after a
rotation are signed with the new key, and consumers verify every message with the JWKS."""

from __future__ import annotations

import time
from pathlib import Path

from neuron.housekeeping import keys_rotate
from privacy.jws import verify_json
from privacy.keys import RELOAD_SECONDS, HubKeys
from relay.destinations import wait_for
from relay.run import BackgroundRelay
from simulator.devices_publish import publish_messages
from tests.relay.rig import alarm_load, relay_rig
from warehouse.manifests import signed_by


def test_the_relay_signs_with_the_new_key_after_a_rotation_without_a_restart(tmp_path: Path) -> None:
    with relay_rig(tmp_path) as rig:
        district = rig.consumer("district")
        messages = alarm_load(rig.fleet, 40)
        before = HubKeys.load(rig.hub).active_signing_key.kid
        with BackgroundRelay(rig.hub) as relay:
            publish_messages(rig.community.host, rig.community.port, messages[:20])
            assert wait_for(lambda: len(district.messages) >= 20, 30)
            after = keys_rotate(rig.hub)["signing_key"]  # as `neuron keys rotate` in another process
            time.sleep(RELOAD_SECONDS * 1.5)  # the relay looks at most once a second; not a timing assertion
            publish_messages(rig.community.host, rig.community.port, messages[20:], client_id="devices-2")
            assert relay.wait_until(lambda s: s.recorded == 40)
            assert wait_for(lambda: len(set(district.event_ids())) == 40, 30)
        signers = [signed_by(raw.decode()) for _, raw in district.messages]
        assert signers[0] == before != after
        assert signers[-1] == after  # the same relay process, now signing with the new key
        jwks = HubKeys.load(rig.hub).jwks()
        for _, raw in district.messages:
            verify_json(raw.decode(), jwks)
