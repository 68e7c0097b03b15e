"""Run a DAG through Airflow for consecutive windows, in this process (`dag.test()`).

The demo and the tests start it as a child process with their own AIRFLOW_HOME (Airflow
reads its configuration once, at import). Progress goes to stdout as `NEURON-PROGRESS`
JSON lines; Airflow's own logs go wherever the parent sends stderr.

    python -m neuron.airflow_runner --dag vehicle_passes --end 2026-11-21T00:00+08:00 --hours 24
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

PROGRESS = "NEURON-PROGRESS "
REPO_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO_ROOT / "dags"


_progress_out = sys.stdout


def runner_command(dag_id: str, first_end: datetime, hours: int) -> list[str]:
    """The command that runs `dag_id` for `hours` hourly windows in a child process."""
    return [
        sys.executable,
        "-m",
        "neuron.airflow_runner",
        "--dag",
        dag_id,
        "--end",
        first_end.isoformat(),
        "--hours",
        str(hours),
    ]


def _progress(**fields: object) -> None:
    _progress_out.write(PROGRESS + json.dumps(fields, default=str) + "\n")
    _progress_out.flush()


def prepare_airflow() -> None:
    """Create or upgrade the metadata DB of $AIRFLOW_HOME and the hub's pools."""
    import subprocess

    from airflow.models.pool import Pool

    # The CLI's migrate also registers what dag.test() needs; upgradedb() alone does not.
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=sys.stderr)
    # DuckDB allows one writer: every task that opens the warehouse takes this pool's slot.
    Pool.create_or_update_pool(
        name="duckdb_writer", slots=1, description="One DuckDB writer at a time", include_deferred=False
    )


def run_windows(dag_id: str, first_end: datetime, hours: int) -> int:
    """Run `dag_id` once per hourly window, the first ending at `first_end`; returns failures."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        _progress(event="import_errors", errors=list(bag.import_errors))
        return hours
    dag = bag.dags[dag_id]
    failures = 0
    for i in range(hours):
        # A manual run's data interval is the hour that ends at its logical date.
        end = first_end + timedelta(hours=i)
        run = dag.test(logical_date=end)
        ok = str(run.state) in ("success", "DagRunState.SUCCESS")
        failures += not ok
        _progress(event="run", window_end=end.isoformat(), state=str(run.state), done=i + 1, total=hours)
    return failures


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: prepare Airflow, run the windows, exit non-zero on any failure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dag", required=True)
    parser.add_argument("--end", required=True, type=datetime.fromisoformat, help="end of the first window")
    parser.add_argument("--hours", type=int, default=1)
    args = parser.parse_args(argv)
    # dag.test() serialises the DAG into the bundle of the configured DAGs folder: it must
    # be ours. Set before Airflow is first imported (it reads its configuration once).
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_FOLDER))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    # Airflow writes its task logs to stdout: progress lines keep the real stdout to
    # themselves, and file descriptor 1 is pointed at stderr for everything else.
    global _progress_out
    sys.stdout.flush()
    _progress_out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    prepare_airflow()
    _progress(event="ready")
    failures = run_windows(args.dag, args.end, args.hours)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
