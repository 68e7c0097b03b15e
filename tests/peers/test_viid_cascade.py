"""The cascade end to end on loopback: a live parking vendor, the hub as lower platform (real
control DB, real HTTP), the simulated upper VIID platform holding public security's key.

Passes reach the upper with the plate exactly as the policy entitles (sealed to public security's
key), attached to the gates of the directory; every notification is an audited export; the
outbox survives outages of the upper and of the hub itself, resending the same NotificationIDs;
and 100 forced restarts of the upper lose no pass and have no NotificationID accepted twice.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from api.admin.shared import ExportFilter, list_exports
from peers.viid.protocol import OK
from peers.viid.run import BackgroundViid
from privacy.seal import PREFIX
from schemas.viid import plate_alias
from simulator.viid_upper import UpperConfig
from tests.peers.viid_rig import Rig, viid_rig
from warehouse.audit import verify_chain
from warehouse.control import session_scope
from warehouse.migrations import migrate
from warehouse.models import AuditEntry
from warehouse.models.viid import ViidNotification


def wait_for(condition: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def outbox(rig: Rig) -> list[ViidNotification]:
    with session_scope(rig.settings.control_url) as session:
        return list(session.execute(select(ViidNotification).order_by(ViidNotification.seq)).scalars())


def pushes(rig: Rig) -> list[AuditEntry]:
    with session_scope(rig.settings.control_url) as session:
        return list(session.execute(select(AuditEntry).where(AuditEntry.action == "push")).scalars())


def test_passes_reach_the_upper_as_the_policy_entitles(tmp_path: Path, migrated_control: str) -> None:
    with viid_rig(tmp_path, migrated_control) as rig, BackgroundViid(rig.settings) as hub:
        sid, code = rig.upper.subscribe(hub.viid.server.url)
        assert code == OK
        rig.live.add(25)
        assert hub.wait_until(lambda s: s.objects_acknowledged >= 25, 20)
        assert rig.received() == rig.expected()  # every pass, each once, its plate opened by the key
        upper = rig.upper.received
        assert (upper.duplicates, upper.malformed) == (0, 0)
        raw = {r["plate_no"] for r in rig.live.records()}
        vehicles = list(upper.vehicles.values())
        assert all(v["PlateNoSealed"].startswith(PREFIX + ".") and v["PlateNo"] not in raw for v in vehicles)
        # GA/T 1400's PlateNo is string(15): an alias of the sealed plate, which rides in PlateNoSealed.
        assert all(len(v["PlateNo"]) <= 15 and v["PlateNo"] == plate_alias(v["PlateNoSealed"]) for v in vehicles)
        apes, gates = rig.upper.directory(hub.viid.server.url)
        assert {v["DeviceID"] for v in vehicles} <= {a["ApeID"] for a in apes}
        assert {v["TollgateID"] for v in vehicles} <= {g["TollgateID"] for g in gates}
        entries = pushes(rig)
        assert len(entries) == len(upper.notifications) and sum(e.rows or 0 for e in entries) == 25
        assert {(e.actor, e.feed, e.outcome) for e in entries} == {("public_security", "traffic.vehicle_passes", "ok")}
        assert {json.loads(e.detail or "{}")["subscribe_id"] for e in entries} == {sid}
        assert all(e.policy_fingerprint == hub.viid.policy.fingerprint for e in entries)
        with session_scope(rig.settings.control_url) as session:
            assert verify_chain(session) == []
        assert outbox(rig) == []
        shown, _ = list_exports(rig.settings, ExportFilter(consumer="public_security"))  # the console's list
        assert {(e.feed, e.format, e.rows) for e in shown} == {
            ("traffic.vehicle_passes", "viid", e.rows) for e in shown
        }
        assert sum(e.rows for e in shown) == 25


def test_outbox_resumes_after_an_outage_with_the_same_notification_ids(tmp_path: Path, control_url: str) -> None:
    migrate(control_url)  # SQLite, and PostgreSQL where it runs
    with viid_rig(tmp_path, control_url, max_objects=4) as rig:
        with BackgroundViid(rig.settings) as first:
            rig.upper.subscribe(first.viid.server.url)
            rig.upper.stop()  # the upper goes away
            rig.live.add(30)
            assert first.wait_until(lambda s: s.passes_queued >= 30, 20)
        queued = outbox(rig)  # the hub stopped too, its notifications still waiting
        assert sum(n.objects for n in queued) == 30 and len(queued) >= 8
        raw = {r["plate_no"] for r in rig.live.records()}
        assert not any(plate in n.body for n in queued for plate in raw)  # the outbox holds no raw plate
        rig.upper.start()  # back, with its registrations forgotten
        with BackgroundViid(rig.settings) as second:
            assert second.wait_until(lambda s: s.objects_acknowledged >= 30, 20)
        assert set(rig.upper.received.notifications) == {n.notification_id for n in queued}
        assert rig.received() == rig.expected()
        assert rig.upper.received.duplicates == 0 and outbox(rig) == []


def test_a_cancelled_subscription_gets_nothing_more(tmp_path: Path, migrated_control: str) -> None:
    with viid_rig(tmp_path, migrated_control) as rig, BackgroundViid(rig.settings) as hub:
        lower = hub.viid.server.url
        _, gates = rig.upper.directory(lower)
        north = gates[0]["TollgateID"]
        sid, _ = rig.upper.subscribe(lower, resource_class=0, resource_uri=north)  # one tollgate only
        rig.live.add(20)
        north_passes = sum(1 for r in rig.live.records() if r["gate_code"] == "G1")
        assert hub.wait_until(lambda s: s.objects_acknowledged >= north_passes, 20)
        assert {v["TollgateID"] for v in rig.upper.received.vehicles.values()} == {north}
        assert rig.upper.cancel(lower, sid) == OK
        polls = hub.stats.polls
        rig.live.add(10)
        assert hub.wait_until(lambda s: s.polls >= polls + 5, 10)
        assert len(rig.upper.received.vehicles) == north_passes and outbox(rig) == []


@pytest.mark.slow
@pytest.mark.parametrize("window", [1, 4])
def test_100_upper_restarts_lose_no_pass_and_accept_no_duplicate(
    tmp_path: Path, migrated_control: str, window: int
) -> None:
    faults = UpperConfig(fail_every=7, drop_every=5)  # and 5xx and dropped acknowledgements between restarts
    with viid_rig(tmp_path, migrated_control, upper=faults, window=window, max_objects=5) as rig:
        with BackgroundViid(rig.settings) as hub:
            rig.upper.subscribe(hub.viid.server.url)
            rig.live.run_at(rate=100, total=300)
            for _ in range(100):  # each round: a network cut (registration kept), then a restart (forgotten)
                time.sleep(0.015)
                rig.upper.disconnect()
                time.sleep(0.015)
                rig.upper.restart()
            rig.live.wait_done(30)
            lost = not wait_for(lambda: rig.received() == rig.expected(), 60)
            assert not lost, f"passes lost: hub {hub.stats}, upper {rig.upper.summary()} {rig.upper.received.problems}"
            assert hub.wait_until(lambda s: not outbox(rig), 20)
        upper = rig.upper.received
        assert rig.upper.restarts == 100
        assert upper.duplicates == 0 and upper.malformed == 0
        assert upper.failed > 0 and upper.dropped > 0 and upper.redeliveries > 0  # the faults happened
        assert hub.stats.registrations > 10  # registered again after restarts
        assert len(pushes(rig)) == len(upper.notifications)  # each accepted notification audited once
