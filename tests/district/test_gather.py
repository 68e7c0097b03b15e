"""`neuron district gather`: real hubs and played communities into Iceberg, exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from district.ingest import gather
from district.lake import ledger_entries
from tests.district.hubs import DAY, assert_lake_holds, district_bench

AIR = "env.air_quality_hourly"
ALARMS = "safety.alarms"
FEEDS = [AIR, ALARMS, "services.fees_monthly"]


def test_every_feed_of_every_hub_lands_once_and_a_replay_is_a_no_op(tmp_path: Path) -> None:
    with district_bench(tmp_path, played=3, real=1, feeds=FEEDS) as bench:
        report = gather(bench.settings)
        assert (report.committed, report.refusals, report.unavailable) == (4 * len(FEEDS), [], {})
        assert report.commits == len(FEEDS)  # one commit per table for the whole chunk of hubs
        assert_lake_holds(bench)
        snapshots = {feed: len(bench.lake().load(feed).snapshots()) for feed in FEEDS}  # type: ignore[union-attr]

        # Replay from scratch (cursors lost): every change is found in the ledger, nothing is committed.
        (bench.settings.home_path / "state" / "cursors.json").unlink()
        again = gather(bench.settings)
        assert (again.committed, again.commits, again.already_held) == (0, 0, 4 * len(FEEDS))
        assert {feed: len(bench.lake().load(feed).snapshots()) for feed in FEEDS} == snapshots  # type: ignore[union-attr]
        assert_lake_holds(bench)


def test_a_new_version_replaces_its_predecessor_in_one_commit(tmp_path: Path) -> None:
    with district_bench(tmp_path, played=2, real=1, feeds=[AIR]) as bench:
        gather(bench.settings)
        bench.server.publish("played-001", AIR, DAY, version=2)
        bench.real["real-0"].publish(AIR, DAY, version=2)
        report = gather(bench.settings)
        assert (report.committed, report.replaced, report.commits) == (2, 2, 1)
        table = bench.lake().load(AIR)
        assert table is not None
        last = table.snapshots()[-1].summary
        assert last is not None and last.operation.value in ("append", "overwrite")
        versions = {(hub, key): version for hub, key, version, _ in ledger_entries(table)}
        assert versions[("played-001", f"community_id=played-001/day={DAY}")] == 2
        assert_lake_holds(bench)  # v1's rows are gone, v2's are there, once


@pytest.mark.parametrize("fault", ["tamper_body", "tamper_manifest", "foreign_rows"])
def test_a_tampered_partition_is_refused_reported_and_never_committed(tmp_path: Path, fault: str) -> None:
    with district_bench(tmp_path, played=2, real=0, feeds=[ALARMS]) as bench:
        key = f"community_id=played-000/day={DAY}"
        bench.server.communities["played-000"].faults[(ALARMS, key)] = fault
        report = gather(bench.settings)
        assert [(r.hub, r.feed, r.partition) for r in report.refusals] == [("played-000", ALARMS, f"{key}@v1")]
        reason = {"tamper_body": "digest the hub signed", "tamper_manifest": "does not match its manifest"}
        assert reason.get(fault, "another community") in report.refusals[0].reason
        assert report.committed == 1
        assert ("played-000", key) not in bench.lake().held(ALARMS)
        assert "played-000" in (bench.settings.home_path / "refusals.jsonl").read_text()
        assert_lake_holds(bench, refused={("played-000", ALARMS, key)})

        # The cursor stayed before it: once the hub serves it intact, the next run takes it.
        del bench.server.communities["played-000"].faults[(ALARMS, key)]
        assert gather(bench.settings).committed == 1
        assert_lake_holds(bench)


def test_a_hub_that_is_down_or_slow_waits_for_the_next_run(tmp_path: Path) -> None:
    with district_bench(tmp_path, played=3, real=0, feeds=[AIR]) as bench:
        bench.server.communities["played-000"].down = True
        bench.server.communities["played-001"].slow_seconds = 1.0
        slow = bench.settings.hubs[1].model_copy(update={"timeout_seconds": 0.3})
        settings = bench.settings.model_copy(update={"hubs": [bench.settings.hubs[0], slow, bench.settings.hubs[2]]})
        report = gather(settings)
        assert set(report.unavailable) == {"played-000", "played-001"}
        assert report.committed == 1
        bench.server.communities["played-000"].down = False
        bench.server.communities["played-001"].slow_seconds = 0.0
        assert gather(bench.settings).committed == 2
        assert_lake_holds(bench)


def test_a_hub_serving_another_communitys_partition_is_refused(tmp_path: Path) -> None:
    with district_bench(tmp_path, played=2, real=0, feeds=[AIR]) as bench:
        # played-001's hub entry points at played-000's hub: its rows are not played-001's.
        hubs = list(bench.settings.hubs)
        hubs[1] = hubs[1].model_copy(update={"url": hubs[0].url, "jwks_file": hubs[0].jwks_file})
        report = gather(bench.settings.model_copy(update={"hubs": hubs}))
        assert [r.hub for r in report.refusals] == ["played-001"]
        assert "another community" in report.refusals[0].reason
        assert {hub for hub, _ in bench.lake().held(AIR)} == {"played-000"}


def test_a_jwks_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    with district_bench(tmp_path, played=2, real=0, feeds=[AIR]) as bench:
        hubs = list(bench.settings.hubs)
        hubs[0] = hubs[0].model_copy(update={"jwks_file": hubs[1].jwks_file})  # pinned to another hub's keys
        report = gather(bench.settings.model_copy(update={"hubs": hubs}))
        assert report.unavailable == {"played-000": "its answers do not verify"}
        assert {hub for hub, _ in bench.lake().held(AIR)} == {"played-001"}


def test_a_hub_pinned_by_fingerprint(tmp_path: Path) -> None:
    from privacy.tls import jwks_fingerprint

    with district_bench(tmp_path, played=2, real=0, feeds=[AIR]) as bench:
        right = jwks_fingerprint(bench.server.communities["played-000"].jwks)
        hubs = [
            bench.settings.hubs[0].model_copy(update={"jwks_file": None, "jwks_fingerprint": right}),
            bench.settings.hubs[1].model_copy(update={"jwks_file": None, "jwks_fingerprint": right}),
        ]
        report = gather(bench.settings.model_copy(update={"hubs": hubs}))
        assert report.committed == 1  # played-000's JWKS is the pinned one; played-001's is not
        assert report.unavailable == {"played-001": "its answers do not verify"}
        assert "pinned fingerprint" in report.refusals[0].reason
