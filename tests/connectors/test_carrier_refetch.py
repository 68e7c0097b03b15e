"""CTWing's cool-down re-fetched (issue 20): the inbox goes down under pushes, CTWing retries
three times and then stops pushing for its cool-down, and the messages of that time are lost
unless fetched again. After the inbox is back it re-fetches them through CTWing's history API
(the simulated platform serves it from the standard, simulator/ctwing_api.py): at start, and on
the sequence gap the next push shows. Every report lands once: 0 missing, 0 doubled.

Scaled in time, not in kind: the peer's cool-down is 2 s instead of 60 s and the outage a few
seconds, so the test stays fast; the rules (3 retries, the 10 % trip, nothing pushed while
cooling) are the platform's."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from connectors.carrier.service import InboxService
from simulator.carrier_push import CarrierPusher, PushConfig, reports
from simulator.ctwing_api import CtwingPlatform
from tests.connectors.carrier_helpers import inbox_hub, landed, small_fleet
from tests.connectors.test_carrier_inbox import expected_keys, key_of

APP_KEY, APP_SECRET, MASTER_KEY = "music-square-app", "app-secret-for-tests", "master-key-for-tests"
COOLDOWN_S = 2.0


def test_an_inbox_outage_under_pushes_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    devices = [d for d in small_fleet() if d.carrier == "ctwing"]
    platform = CtwingPlatform(APP_KEY, APP_SECRET, MASTER_KEY).start()
    hub = inbox_hub(
        tmp_path / "hub", devices, ctwing_api_url=platform.url, ctwing_app_key=APP_KEY, ctwing_app_secret=APP_SECRET,
        ctwing_master_key=MASTER_KEY,
    )  # fmt: skip
    # Event times in the recent past, one round of the six devices per second.
    items = list(reports(devices, int(time.time() * 1000) - 120_000, 120, seed=21, alarm_rate=0.1))
    first, outage, cooling, after = items[:30], items[30:60], items[60:90], items[90:]
    try:
        inbox = InboxService(hub, publish_alarms=False, process=False, port=0).start()
        port = inbox.port
        cfg = PushConfig(ctwing_url=f"http://127.0.0.1:{port}/carrier/ctwing", rate=400, retry_spacing_s=0.02,
                         cooldown_seconds=COOLDOWN_S, cooldown_min_sample=5, timeout_s=1.0, dup_rate=0.2)  # fmt: skip
        peer = CarrierPusher(cfg, platform=platform)
        peer.push(peer.deliveries(first))
        inbox.processor.step(force_land=True)
        inbox.stop()  # the inbox is down ...

        stats = peer.push(peer.deliveries(outage))  # ... under pushes: retried 3 times, then a cool-down
        assert stats.failed > 0 and stats.cooldowns >= 1

        inbox = InboxService(hub, publish_alarms=False, process=False, port=port).start()  # back
        try:
            proc = inbox.processor
            proc.step()  # at start: everything since each device's last uplink is fetched again
            lost_before = stats.lost_cooldown
            stats = peer.push(peer.deliveries(cooling))  # the cool-down outlives the outage: not pushed
            assert stats.lost_cooldown > lost_before
            time.sleep(COOLDOWN_S)  # the platform pushes again once its cool-down is over
            peer.push(peer.deliveries(after))
            proc.step()  # the first push after the cool-down shows a sequence gap: fetched again
            proc.step(force_land=True)
            assert proc.stats.refetched > 0 and platform.queries > 0 and platform.refused == 0
        finally:
            inbox.stop()
    finally:
        platform.stop()
    rows = landed(hub, "home_safety")
    assert not landed(hub, "_rejects")
    assert Counter(map(key_of, rows)).most_common(1)[0][1] == 1  # 0 doubled
    assert set(map(key_of, rows)) == expected_keys(items)  # 0 missing


def test_the_history_query_pages_through_everything_and_refuses_a_wrong_signature() -> None:
    import pytest

    from connectors.carrier.ctwing_api import CtwingHistory
    from kernel.errors import RetriableError
    from simulator.carrier_push import ctwing_message

    device = next(d for d in small_fleet() if d.kind == "smoke")
    platform = CtwingPlatform(APP_KEY, APP_SECRET).start()
    try:
        sent = list(reports([device], 1_700_000_000_000, 250, seed=5))
        for r in sent:
            platform.record(ctwing_message(r))
        history = CtwingHistory(platform.url, APP_KEY, APP_SECRET)
        found = history.uplinks(device.product_id, device.carrier_device_id, 0, 2_000_000_000_000)
        assert sorted(i["timestamp"] for i in found) == [r.event_ms for r in sent]  # three pages, none repeated
        assert platform.queries == 3
        window = history.uplinks(device.product_id, device.carrier_device_id, sent[10].event_ms, sent[20].event_ms)
        assert [i["timestamp"] for i in sorted(window, key=lambda i: i["timestamp"])] == [
            r.event_ms for r in sent[10:20]
        ]  # begin inclusive, end exclusive
        with pytest.raises(RetriableError, match="refused") as refused:
            CtwingHistory(platform.url, APP_KEY, "not-the-secret").uplinks(device.product_id, "x", 0, 1)
        assert device.carrier_device_id not in str(refused.value)
    finally:
        platform.stop()
