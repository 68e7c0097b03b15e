"""Start an Airflow component that runs tasks (the scheduler, whose LocalExecutor workers
fork every task process; a Celery worker) with the hub's task stack already imported.

Why: every Airflow task is a process forked from its worker, and each then imported the
hub's stack itself (pipeline, connectors, DuckDB, pandas, Great Expectations: ~5 s of CPU
on this machine) before its work — at one task per community-window, most of an hourly
window's cost. Imported once here, before Airflow forks its workers, the modules are
inherited by every task process (copy-on-write pages, shared: PSS, not RSS, grows), as a
pre-loading web server does. Only imports happen here: no settings are read, no files or
connections opened, no threads started by our code, so each task still reads its own
settings (its community's) when it runs. NEURON_AIRFLOW_WARM=false turns it off.

    python -m neuron.airflow_warm scheduler        # what `neuron up` runs
"""

from __future__ import annotations

import importlib
import os
import sys

# What a hub task imports when it runs (neuron/dag_factory.py's tasks, neuron/window.py).
WARM_MODULES = (
    "pandas",
    "duckdb",
    "great_expectations",
    "great_expectations.expectations",
    "pipeline.stages",
    "connectors.families",
    "neuron.window",
    "neuron.tasks",
    "kernel.logging",
    "warehouse.publisher",
)


def warm() -> list[str]:
    """Import the task stack; returns what failed to import (a task will then say why)."""
    missing = []
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # never stop Airflow from starting: the task imports it again
            missing.append(name)
    return missing


def main() -> None:
    """Warm the stack (unless NEURON_AIRFLOW_WARM=false), then run Airflow's own CLI."""
    if os.environ.get("NEURON_AIRFLOW_WARM", "true").lower() not in ("0", "false", "no"):
        warm()
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *sys.argv[1:]]
    airflow_main()


if __name__ == "__main__":
    main()
