"""One community-window (neuron/window.py): which streams are due, every due stream loaded in
one process with each failure isolated, retriable failures told from fatal ones, re-runs
idempotent; then one window through Airflow's `dag.test()` of the `hub` DAG (the runner).

Real parts: the simulated parking vendor over HTTP, the hub's DuckDB and control DB."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kernel.settings import REPO_ROOT, Settings
from neuron.airflow_runner import PROGRESS, runner_command
from neuron.window import (
    DueStream,
    WindowFailed,
    WindowRetriable,
    changed_days,
    due_streams,
    feeds_to_publish,
    ingest_due,
    raise_for_failures,
)
from privacy.keys import init_keys
from schemas.feeds import load_feeds
from simulator.parking import ParkingSimulator
from simulator.server import start_parking_api
from tests.conftest import TOKEN, make_settings
from tests.dags.airflow_hub import airflow_env, hub_env, published
from warehouse.control import session_scope
from warehouse.migrations import migrate
from warehouse.models import LoadRecord

TZ = "Asia/Shanghai"
SH = ZoneInfo(TZ)
# 05:00–06:00 Shanghai on a simulated day: the parking vendor is busy, door access drops at 06:00.
START = datetime(2026, 11, 20, 5, tzinfo=SH).astimezone(UTC)
END = START + timedelta(hours=1)
PARKING = ["vehicle_passes", "parking_charges"]


def test_a_window_runs_each_stream_due_on_its_own_cadence() -> None:
    cadences = {
        "vehicle_passes": "0 * * * *",
        "alarm_lifecycle": "*/15 * * * *",
        "door_access": "0 6 * * *",
        "monthly_thing": "0 1 1 * *",
    }
    due = due_streams(cadences, START, END, TZ)
    # In order; the 15-minute stream reads the window as one batch; the 06:00 drop reads the
    # day up to the window's end; the monthly stream is not due.
    assert due == [
        DueStream("vehicle_passes", START, END),
        DueStream("alarm_lifecycle", START, END),
        DueStream("door_access", END - timedelta(days=1), END),
    ]
    assert [d.stream for d in due_streams(cadences, END, END + timedelta(hours=1), TZ)] == [
        "vehicle_passes",
        "alarm_lifecycle",
    ]


def test_feeds_follow_the_streams_that_changed() -> None:
    feeds = load_feeds().values()
    ingested = {"vehicle_passes", "parking_charges", "door_access"}
    out = feeds_to_publish(feeds, {"vehicle_passes": ["2026-11-20"]}, ingested, START, END, TZ)
    built_from_passes = {f.name for f in feeds if "vehicle_passes" in f.sources}
    assert set(out) >= built_from_passes and all(days == ["2026-11-20"] for days in out.values())
    assert not {f.name for f in feeds if set(f.sources) & ingested and "vehicle_passes" not in f.sources} & set(out)
    # A daily feed publishes once a day, at its cadence (00:30), for the days since the last
    # time: republished hourly, its counts would move by a few between versions.
    midnight = (END - timedelta(hours=6), END - timedelta(hours=5))  # 00:00–01:00
    night = feeds_to_publish(feeds, {"door_access": ["2026-11-20"]}, ingested, *midnight, TZ)
    assert night["access.entries_daily"] == ["2026-11-19", "2026-11-20"]
    assert "access.entries_daily" not in out
    # A stream that loaded an empty batch touched no day: nothing of it is republished.
    assert not feeds_to_publish(feeds, {"vehicle_passes": []}, {"vehicle_passes"}, START, END, TZ).keys() & (
        built_from_passes
    )


def _hub(home: Path, vendor_url: str) -> Settings:
    settings = make_settings(home, vendor_url)
    init_keys(settings)
    migrate(settings.control_url)
    return settings


def _loaded(settings: Settings) -> list[tuple[str, str, int]]:
    with session_scope(settings.control_url) as s:
        rows = s.query(LoadRecord.batch_id, LoadRecord.status, LoadRecord.rows_loaded).order_by(LoadRecord.batch_id)
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_one_window_loads_every_due_stream_and_a_rerun_replaces_it(tmp_path: Path) -> None:
    with start_parking_api(ParkingSimulator(seed=7), token=TOKEN) as vendor:
        settings = _hub(tmp_path / "hub", vendor.url)
        due = due_streams(dict.fromkeys(PARKING, "0 * * * *"), START, END, TZ)
        first = ingest_due(settings, due)
        assert [(o.stream, o.loaded) for o in first] == [(s, True) for s in PARKING]
        assert first[0].rows_in > 0 and changed_days([o.__dict__ for o in first])["vehicle_passes"] == ["2026-11-20"]
        raise_for_failures(first)  # nothing failed: nothing raised
        loads = _loaded(settings)
        assert len(loads) == 2 and {status for _, status, _ in loads} == {"loaded"}
        again = ingest_due(settings, due)  # a retry or a re-run of the same window
        assert [o.loaded for o in again] == [True, True]
        assert _loaded(settings) == loads  # the same batches, replaced: nothing added


def test_a_failing_stream_is_isolated_and_only_retriable_failures_retry(tmp_path: Path) -> None:
    due = [DueStream(s, START, END) for s in PARKING]
    # The vendor unreachable: a transient failure of each parking stream, so the window retries.
    down = _hub(tmp_path / "down", "http://127.0.0.1:9")
    outcomes = ingest_due(down, due)
    assert [o.loaded for o in outcomes] == [False, False] and all(o.retriable for o in outcomes)
    with pytest.raises(WindowRetriable, match="2 of 2 due streams failed: vehicle_passes"):
        raise_for_failures(outcomes)
    # Credentials refused: fatal, and the window fails at once (no retry).
    with start_parking_api(ParkingSimulator(seed=7), token="another-token") as vendor:
        refused = _hub(tmp_path / "refused", vendor.url)
        outcomes = ingest_due(refused, due)
    assert [o.loaded for o in outcomes] == [False, False] and not any(o.retriable for o in outcomes)
    with pytest.raises(WindowFailed, match="SourceAuthError"):
        raise_for_failures(outcomes)
    # One stream broken (an unknown name stands for a broken contract), the other loads.
    with start_parking_api(ParkingSimulator(seed=7), token=TOKEN) as vendor:
        mixed = _hub(tmp_path / "mixed", vendor.url)
        outcomes = ingest_due(mixed, [DueStream("no_such_stream", START, END), due[0]])
    assert [(o.stream, o.loaded) for o in outcomes] == [("no_such_stream", False), ("vehicle_passes", True)]
    with pytest.raises(WindowFailed, match="1 of 2 due streams failed: no_such_stream"):
        raise_for_failures(outcomes)


@pytest.mark.slow
@pytest.mark.timeout(1500)  # two runs of ~80 s alone; much longer on the shared, loaded cores
def test_windows_through_the_hub_dag_load_and_publish_and_rerun_identically(tmp_path: Path) -> None:
    """The runner (what the demo uses): two hourly windows of the hub DAG through Airflow's
    `dag.test()`, then one publish run; run again, the published partitions are the same."""
    with start_parking_api(ParkingSimulator(seed=7), token=TOKEN) as vendor:
        settings = _hub(tmp_path / "hub", vendor.url)
        env = airflow_env(tmp_path, **{**hub_env(tmp_path / "hub", vendor.url), "NEURON_MASTER_SECRET": ""})
        env.pop("NEURON_MASTER_SECRET")  # this hub's master secret is the one init_keys wrote
        cmd = runner_command(PARKING, END, 2)

        def run() -> list[dict[str, object]]:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)
            assert proc.returncode == 0, proc.stderr[-3000:]
            lines = [line.removeprefix(PROGRESS) for line in proc.stdout.splitlines() if line.startswith(PROGRESS)]
            return [json.loads(line) for line in lines]

        events = run()
        runs = [(e["dag"], e["state"]) for e in events if e["event"] == "run"]
        assert sorted(runs) == sorted([(s, "success") for s in PARKING] * 2)
        assert {e["state"] for e in events if e["event"] in ("window", "publish")} == {"success"}
        first = published(settings)
        assert {feed for _, feed, *_ in first} >= {"traffic.vehicle_flow_hourly"}
        loads = _loaded(settings)
        assert len(loads) == 4
        run()  # the same windows again: the same batches replaced, no new partition version
        assert _loaded(settings) == loads
        assert published(settings) == first


def test_airflow_retries_a_window_only_when_a_failure_was_retriable() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from neuron.tasks import fatal_fails_fast

    with pytest.raises(AirflowFailException, match="WindowFailed"), fatal_fails_fast():
        raise WindowFailed("1 of 2 due streams failed: no_such_stream (FatalError)")
    with pytest.raises(WindowRetriable), fatal_fails_fast():  # propagates: Airflow's retries with backoff
        raise WindowRetriable("1 of 2 due streams failed: vehicle_passes (SourceUnavailable)")
