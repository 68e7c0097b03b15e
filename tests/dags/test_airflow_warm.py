"""The task-running Airflow components start through neuron.airflow_warm: the hub's task stack
is imported before Airflow forks its workers, and the command is otherwise Airflow's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kernel.settings import REPO_ROOT
from neuron.up import AirflowPorts, airflow_services, celery_workers
from tests.dags.airflow_hub import airflow_env

WARM = [sys.executable, "-m", "neuron.airflow_warm"]


def test_the_scheduler_and_celery_workers_start_warm() -> None:
    ports = AirflowPorts(api=25080, scheduler_health=25081, log_server=25082)
    commands = {s.name: s.argv for s in airflow_services(ports)}
    assert commands["scheduler"][:3] == WARM and commands["scheduler"][3:] == ["scheduler"]
    assert commands["api-server"][:3] == [sys.executable, "-m", "airflow"]  # runs no task: not warmed
    assert all(w.argv[:5] == [*WARM, "celery", "worker"] for w in celery_workers(2))


def test_the_warm_start_imports_the_task_stack_then_runs_airflows_cli(tmp_path: Path) -> None:
    code = (
        "import sys, neuron.airflow_warm as w; missing = w.warm();"
        "print('missing', missing); print('gx', 'great_expectations' in sys.modules)"
    )
    env = airflow_env(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    assert "missing []" in out.stdout and "gx True" in out.stdout, out.stderr[-2000:]
    version = subprocess.run([*WARM, "version"], env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip().startswith("3."), version.stderr[-2000:]
