"""The DAGs: integrity over the DagBag, and real Airflow runs of the vehicle_passes DAG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from neuron.airflow_runner import DAGS_FOLDER, PROGRESS, runner_command
from neuron.settings import REPO_ROOT
from privacy.keys import init_keys
from simulator.parking import ParkingSimulator
from simulator.server import start_parking_api
from tests.conftest import TOKEN, make_settings
from tests.leaks import find_leaks
from warehouse.control import LoadRecord, Partition, session_scope
from warehouse.migrations import migrate

CST = timezone(timedelta(hours=8))


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of an Airflow process with its own metadata DB under `home`."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        **extra,
    }


def test_dagbag_has_no_import_errors_and_every_dag_is_documented(tmp_path: Path) -> None:
    script = (
        "import json; from airflow.dag_processing.dagbag import DagBag;"
        f"b = DagBag(dag_folder={str(DAGS_FOLDER)!r});"
        "print(json.dumps({'errors': {k: str(v) for k, v in b.import_errors.items()}, 'dags': {"
        "d.dag_id: {'tags': sorted(d.tags), 'doc': bool(d.doc_md), 'owners': d.owner,"
        "'retries': [t.retries for t in d.tasks], 'pools': sorted({t.pool for t in d.tasks}),"
        "'timeouts': [bool(t.execution_timeout) for t in d.tasks]} for d in b.dags.values()}}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=airflow_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    bag = json.loads(out.stdout.strip().splitlines()[-1])
    assert bag["errors"] == {}
    dag = bag["dags"]["vehicle_passes"]
    assert "neuron" in dag["tags"] and dag["doc"] and dag["owners"] == "neuron-hub"
    assert all(r >= 1 for r in dag["retries"]) and all(dag["timeouts"])
    assert "duckdb_writer" in dag["pools"]


@pytest.mark.slow
def test_airflow_runs_hourly_windows_end_to_end_without_leaking_plates(tmp_path: Path) -> None:
    sim = ParkingSimulator(seed=11)
    with start_parking_api(sim, token=TOKEN) as vendor:
        settings = make_settings(tmp_path, vendor.url)
        init_keys(settings)
        migrate(settings.control_url)
        env = airflow_env(
            tmp_path,
            NEURON_HOME=str(tmp_path),
            NEURON_PARKING__BASE_URL=vendor.url,
            NEURON_PARKING__TOKEN=TOKEN,
            NEURON_STATE_DIR="var",
            NEURON_LAKE_DIR="lake",
            NEURON_WAREHOUSE_PATH="var/warehouse.duckdb",
        )
        first_end = datetime(2026, 11, 20, 8, tzinfo=CST)
        cmd = runner_command("vehicle_passes", first_end, 3)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    events = [json.loads(line.removeprefix(PROGRESS)) for line in proc.stdout.splitlines() if line.startswith(PROGRESS)]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [e["state"] for e in events if e["event"] == "run"] == ["success"] * 3
    with session_scope(settings.control_url) as s:
        windows = s.execute(select(LoadRecord.window_start, LoadRecord.status).order_by(LoadRecord.window_start)).all()
        published = s.scalar(select(func.count()).select_from(Partition))
    assert [(w.astimezone(CST).hour, status) for w, status in windows] == [(7, "loaded"), (8, "loaded"), (9, "loaded")]
    assert published and published > 0
    logs = [(str(p), p.read_text(errors="ignore")) for p in (tmp_path / "airflow").rglob("*.log")]
    assert find_leaks(sim.all_plates(), [("stdout", proc.stdout), ("stderr", proc.stderr), *logs]) == []
