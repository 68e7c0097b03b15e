"""The DAG suite: integrity over the DagBag. Real runs: `dag.test()` of the hub DAG's windows in
test_window.py (and the demo), the daily DAGs in test_tasks.py, and the scheduler itself
(day, backfill, Celery) in test_scheduler.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from connectors.registry import STREAMS
from kernel.settings import REPO_ROOT
from neuron.airflow_runner import DAGS_FOLDER
from neuron.dag_factory import hub_dag_id
from tests.dags.airflow_hub import airflow_env

# Tasks that open the DuckDB warehouse: each must hold the one-slot pool.
DUCKDB_TASKS = {"ingest", "publish", "purge", "write_report"}

# What a DAG file must not import at parse time (each costs from 0.3 s to ~5 s; tasks
# import them when they run).
HEAVY = [
    "great_expectations",
    "pandas",
    "duckdb",
    "pipeline.stages",
    "warehouse.publisher",
    "privacy.deidentify",
    "connectors.families",
    "connectors.http",
    "requests",
    "paho",
    "fastapi",
    "api.app",
]

_BAG_SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
HEAVY = %r
b = DagBag(dag_folder=%r)
def uris(cond):
    if cond is None:
        return []
    return [cond.uri] if hasattr(cond, "uri") else [u for c in getattr(cond, "objects", []) for u in uris(c)]
print(json.dumps({
    "errors": {k: str(v) for k, v in b.import_errors.items()},
    "parse_seconds": {s.file: s.duration.total_seconds() for s in b.dagbag_stats},
    "heavy_imports": sorted(m for m in HEAVY if m in sys.modules),
    "dags": {d.dag_id: {
        "tags": sorted(d.tags), "doc": d.doc_md or "", "owners": d.owner,
        "assets": sorted(uris(getattr(d.timetable, "asset_condition", None))),
        "schedule": str(getattr(d.timetable, "summary", "")),
        "tasks": {t.task_id: {"retries": t.retries, "pool": t.pool, "timeout": bool(t.execution_timeout),
                              "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
                              "upstream": sorted(t.upstream_task_ids),
                              "outlets": [getattr(o, "uri", None) or o.name for o in t.outlets]} for t in d.tasks},
    } for d in b.dags.values()},
}))
"""


def _parse(home: Path, **env: str) -> dict[str, Any]:
    """The DagBag as a test sees it, parsed in a fresh process with its own AIRFLOW_HOME."""
    out = subprocess.run(
        [sys.executable, "-c", _BAG_SCRIPT % (HEAVY, str(DAGS_FOLDER))],
        env=airflow_env(home, **env),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The default suite (one hub), parsed once."""
    return _parse(tmp_path_factory.mktemp("bag"))


def test_dagbag_has_no_import_errors_and_parses_without_heavy_imports(bag: dict[str, Any]) -> None:
    assert bag["errors"] == {}
    assert set(bag["parse_seconds"]) >= {"hub.py", "quality.py", "retention.py", "key_rotation.py"}
    # Parse time stays under a second per file because nothing heavy is imported at parse
    # time (checked exactly here); Airflow's own per-file measure (dagbag_stats) is only
    # bounded generously, as two busy cores can stretch it; bench/scheduler_day.py reports it.
    assert bag["heavy_imports"] == []
    assert all(seconds < 5.0 for seconds in bag["parse_seconds"].values()), bag["parse_seconds"]


def test_every_dag_is_owned_tagged_documented_retried_and_bounded(bag: dict[str, Any]) -> None:
    for dag_id, dag in bag["dags"].items():
        assert dag["owners"] == "neuron-hub", dag_id
        assert "neuron" in dag["tags"], dag_id
        assert len(dag["doc"]) > 100, dag_id
        for task_id, t in dag["tasks"].items():
            assert t["retries"] >= 1 and t["timeout"], (dag_id, task_id)
            if task_id in DUCKDB_TASKS:
                assert t["pool"] == "duckdb_writer", (dag_id, task_id)


def test_one_hub_dag_runs_every_window_in_two_tasks(bag: dict[str, Any]) -> None:
    dags = bag["dags"]
    # The whole suite: the hub DAG and the daily ones; no DAG per stream or per feed (their
    # per-task process start-up was most of a window's cost: bench scheduler_day).
    assert set(dags) == {"hub", "quality", "retention", "key_rotation"}
    hub = dags[hub_dag_id()]
    assert hub["schedule"] == "0 * * * *"  # hourly windows; each stream runs when it is due
    assert list(hub["tasks"]) == ["ingest", "publish"]
    publish = hub["tasks"]["publish"]
    # Published even when a stream failed (the others' rows); Assets recorded through
    # aliases, for the streams loaded and the feeds published only.
    assert publish["upstream"] == ["ingest"] and publish["trigger_rule"] == "all_done"
    assert publish["outlets"] == ["neuron-staging", "neuron-feeds"]
    # The doc lists every stream with its cadence: a stream added tomorrow is picked up.
    assert all(f"`{stream}`" in hub["doc"] for stream in STREAMS)


def test_a_subdistrict_suite_gives_each_community_its_dag_and_writer_pool(tmp_path: Path) -> None:
    bag = _parse(tmp_path, NEURON_DAG_COMMUNITIES="music-square,west-lane", NEURON_DAG_STREAMS="vehicle_passes")
    assert bag["errors"] == {}
    dags = bag["dags"]
    for community, suffix in (("music-square", "__music_square"), ("west-lane", "__west_lane")):
        hub = dags[hub_dag_id(community)]
        assert hub_dag_id(community) == f"hub{suffix}"
        assert f"community-{community}" in hub["tags"]
        assert {t["pool"] for t in hub["tasks"].values()} == {f"duckdb_writer{suffix}"}  # one DuckDB file each
        assert hub["tasks"]["publish"]["outlets"] == [f"neuron-staging{suffix}", f"neuron-feeds{suffix}"]
        assert "`vehicle_passes`" in hub["doc"] and "`parking_charges`" not in hub["doc"]
        assert {f"quality{suffix}", f"retention{suffix}", f"key_rotation{suffix}"} <= set(dags)
    assert "hub" not in dags


def test_a_catch_up_suite_runs_exactly_its_windows(tmp_path: Path) -> None:
    bag = _parse(tmp_path, NEURON_DAG_START="2026-11-20T00:00+08:00", NEURON_DAG_END="2026-11-20T23:00+08:00")
    assert bag["errors"] == {} and list(bag["dags"]["hub"]["tasks"]) == ["ingest", "publish"]
