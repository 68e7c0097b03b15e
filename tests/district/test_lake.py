"""Queries across communities, receipts, compaction and the single committer, on one gathered lake."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from district.ingest import gather
from district.keys import receipts_jwks
from district.lake import Lake
from district.locks import committer_lock
from district.query import run_question
from district.receipts import receipt_for, verify_receipt
from kernel.errors import IntegrityError, RetriableError
from tests.district.hubs import DAY, Bench, assert_lake_holds, district_bench

AIR = "env.air_quality_hourly"
ALARMS = "safety.alarms"


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    home = tmp_path_factory.mktemp("district")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEURON_DISTRICT_CONFIG", str(home / "absent.toml"))
        with district_bench(home, played=4, real=1, feeds=[AIR, ALARMS]) as running:
            gather(running.settings)
            yield running


def test_air_quality_by_hour_is_the_same_through_pyiceberg_and_duckdbs_reader(bench: Bench) -> None:
    arrow = run_question(bench.settings, "air_quality_by_hour", "arrow")
    files = run_question(bench.settings, "air_quality_by_hour", "files")
    assert arrow.equals(files)
    assert arrow.num_rows == 24 and set(arrow.column("communities").to_pylist()) == {5}
    rows = pa.concat_tables([t.select(["hour_start", "pm25_avg"]) for _, t in bench.expected()[AIR].values()])
    first = rows.filter(pc.equal(rows.column("hour_start"), arrow.column("hour_start")[0]))
    assert arrow.column("pm25_avg")[0].as_py() == pytest.approx(round(pc.mean(first.column("pm25_avg")).as_py(), 1))


def test_alarm_response_times_by_subdistrict(bench: Bench) -> None:
    answer = run_question(bench.settings, "alarm_response_by_subdistrict", "files")
    assert answer.equals(run_question(bench.settings, "alarm_response_by_subdistrict", "arrow"))
    by = {row["subdistrict"]: row for row in answer.to_pylist()}
    assert set(by) == {"caoyang-xincun", "changshou-road"}
    assert sum(row["alarms"] for row in by.values()) == sum(t.num_rows for _, t in bench.expected()[ALARMS].values())
    assert by["changshou-road"]["communities"] == 3  # real-0, played-001, played-003


def test_duckdbs_iceberg_extension_is_refused_with_a_reason_offline(bench: Bench) -> None:
    try:
        answer = run_question(bench.settings, "air_quality_by_hour", "iceberg")
    except Exception as exc:
        assert "iceberg extension" in str(exc)
    else:
        assert answer.equals(run_question(bench.settings, "air_quality_by_hour", "arrow"))


def test_a_signed_receipt_lists_what_the_district_holds_of_a_hub(bench: Bench) -> None:
    token = receipt_for(bench.settings, bench.lake(), "played-002")
    payload = verify_receipt(token, receipts_jwks(bench.settings))
    assert payload["hub"] == "played-002" and set(payload["feeds"]) == {AIR, ALARMS}
    held = payload["feeds"][AIR]["partitions"]
    version = bench.server.communities["played-002"].versions[0]
    assert held == [{"partition": f"community_id=played-002/day={DAY}", "version": 1, "sha256": version.sha256}]
    head, body, signature = token.split(".")
    forged = ".".join([head, body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB"), signature])
    with pytest.raises(IntegrityError):
        verify_receipt(forged, receipts_jwks(bench.settings))


def test_the_hub_checks_a_receipt_against_what_it_published(bench: Bench) -> None:
    from api.district_receipts import check_receipt

    hub = bench.real["real-0"]
    token = receipt_for(bench.settings, bench.lake(), "real-0")
    found = check_receipt(hub.settings, token, receipts_jwks(bench.settings), "district")
    assert (found.held, found.behind, found.mismatched) == (2, [], [])
    hub.publish(AIR, DAY)  # a version the district has not fetched yet
    found = check_receipt(hub.settings, token, receipts_jwks(bench.settings), "district")
    assert found.behind == [f"{AIR} community_id=real-0/day={DAY} v2"]
    assert gather(bench.settings).committed == 1  # and the next run catches up (the module's lake stays whole)
    token = receipt_for(bench.settings, bench.lake(), "real-0")
    assert check_receipt(hub.settings, token, receipts_jwks(bench.settings), "district").held == 2
    other = receipt_for(bench.settings, bench.lake(), "played-000")
    with pytest.raises(IntegrityError, match="for this community"):
        check_receipt(hub.settings, other, receipts_jwks(bench.settings), "district")


def test_one_committer_per_table(bench: Bench) -> None:
    settings = bench.settings.model_copy(update={"lock_timeout_seconds": 0.2})
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with committer_lock(settings, "district.x"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    try:
        with pytest.raises(RetriableError, match="another committer"), committer_lock(settings, "district.x"):
            pass
    finally:
        release.set()
        thread.join()
    with committer_lock(settings, "district.x"):
        pass


def test_cli_query_status_and_receipt(bench: Bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from neuron.cli import app

    config = tmp_path / "district.toml"
    hubs = "\n".join(
        f'[[hubs]]\ncommunity_id = "{h.community_id}"\nsubdistrict = "{h.subdistrict}"\nurl = "{h.url}"\n'
        f'jwks_file = "{h.jwks_file}"\n'
        for h in bench.settings.hubs
    )
    config.write_text(f'home = "{bench.settings.home_path}"\n{hubs}')
    runner = CliRunner()
    answer = tmp_path / "answer.csv"
    args = ["district", "query", "alarm_response_by_subdistrict", "--csv", str(answer), "--config", str(config)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "changshou-road" in answer.read_text()
    assert runner.invoke(app, ["district", "status", "--config", str(config)]).exit_code == 0
    out = tmp_path / "r.jws"
    result = runner.invoke(app, ["district", "receipt", "real-0", "--out", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert verify_receipt(out.read_text().strip(), receipts_jwks(bench.settings))["hub"] == "real-0"
    result = runner.invoke(app, ["district", "gather", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["committed"] == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[[hubs]]\ncommunity_id = "x"\nurl = "http://x"\n')
    result = runner.invoke(app, ["district", "hubs", "--config", str(bad)])
    assert result.exit_code == 1 and "pin its keys" in result.output and "Traceback" not in result.output


def test_compaction_merges_a_community_months_day_files(tmp_path: Path) -> None:
    with district_bench(tmp_path, played=2, real=0, feeds=[AIR], partition_granularity="month") as bench:
        gather(bench.settings)
        for community in ("played-000", "played-001"):
            bench.server.publish(community, AIR, DAY + timedelta(days=1))
        bench.server.publish("played-000", AIR, DAY, version=2)  # replaces a day inside a month's file
        gather(bench.settings)
        lake = Lake(bench.settings)
        # played-001's month: two day files; played-000's: one (its first file was replaced by the
        # commit that brought day 20 v2 and day 21 together).
        assert lake.compact(AIR) == (3, 2)
        assert_lake_holds(bench)
        assert gather(bench.settings).committed == 0
        assert lake.compact(AIR) == (2, 2)
