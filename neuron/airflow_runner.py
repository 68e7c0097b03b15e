"""Run the hub's DAG through Airflow for consecutive windows, in this process (`dag.test()`).

For each hourly window the `hub` DAG runs once, ingesting the named streams that are due
(`conf["streams"]`) without publishing; then one more run publishes each feed built from
those streams once, for the local days the windows touched (`conf["feeds"]`,
`conf["days"]`): one marts build instead of one per window. The demo and
the tests start it as a child process with their own AIRFLOW_HOME (Airflow reads its
configuration once, at import). Progress goes to stdout as `NEURON-PROGRESS` JSON lines;
Airflow's own logs go wherever the parent sends stderr.

    python -m neuron.airflow_runner --stream vehicle_passes --end 2026-11-21T00:00+08:00 --hours 24 --publish
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

PROGRESS = "NEURON-PROGRESS "
REPO_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO_ROOT / "dags"


_progress_out = sys.stdout

# Airflow's metadata DB on SQLite (one machine): every component and CLI call writes to one
# file, and pysqlite's default 5 s busy timeout turns a busy moment into "database is
# locked". Airflow takes connect args by import path: AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS.
SQLITE_CONNECT_ARGS = {"timeout": 60}
SQLITE_CONNECT_ARGS_PATH = "neuron.airflow_runner.SQLITE_CONNECT_ARGS"


def runner_command(streams: str | list[str], first_end: datetime, hours: int, publish: bool = True) -> list[str]:
    """The command that runs the hub DAG for `hours` hourly windows of the named stream(s),
    then (by default) publishes their feeds, in a child process."""
    names = [streams] if isinstance(streams, str) else streams
    cmd = [sys.executable, "-m", "neuron.airflow_runner"]
    for name in names:
        cmd += ["--stream", name]
    cmd += ["--end", first_end.isoformat(), "--hours", str(hours)]
    return cmd + (["--publish"] if publish else [])


def _progress(**fields: object) -> None:
    _progress_out.write(PROGRESS + json.dumps(fields, default=str) + "\n")
    _progress_out.flush()


def prepare_airflow() -> None:
    """Create or upgrade the metadata DB of $AIRFLOW_HOME and the hub's pools."""
    import subprocess

    # The CLI's migrate also registers what dag.test() needs; upgradedb() alone does not.
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=sys.stderr)
    create_pools()


def create_pools() -> None:
    """DuckDB allows one writer: every task that opens a warehouse takes its pool's one slot
    (one pool per community of a subdistrict suite: each has its own DuckDB file)."""
    from airflow.models.pool import Pool

    from neuron.dag_factory import duckdb_pool, suite_communities

    for community in suite_communities():
        Pool.create_or_update_pool(
            name=duckdb_pool(community), slots=1, description="One DuckDB writer at a time", include_deferred=False
        )


def _succeeded(run: Any) -> bool:
    return str(run.state) in ("success", "DagRunState.SUCCESS")


def _outcomes(run: Any) -> list[dict[str, Any]]:
    """What the run's `ingest` task reported for each due stream (its XCom), if it ran."""
    for ti in run.get_task_instances():
        if ti.task_id == "ingest":
            return list(ti.xcom_pull(task_ids="ingest", key="outcomes") or [])
    return []


def run_windows(streams: list[str], first_end: datetime, hours: int, publish: bool) -> int:
    """Run the hub DAG once per hourly window (the first ending at `first_end`) for the named
    streams, then publish every feed built from them; returns the number of failed runs."""
    from airflow.dag_processing.dagbag import DagBag

    from neuron.dag_factory import hub_dag_id
    from schemas.feeds import load_feeds

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        _progress(event="import_errors", errors=list(bag.import_errors))
        return hours
    hub = bag.dags[hub_dag_id()]
    feeds = sorted(name for name, feed in load_feeds().items() if set(streams) & set(feed.sources)) if publish else []
    failures = done = 0
    days: set[str] = set()
    for i in range(hours):
        # A manual run's data interval is the hour that ends at its logical date.
        end = first_end + timedelta(hours=i)
        run = hub.test(logical_date=end, run_conf={"streams": streams, "publish": False})
        failures += not _succeeded(run)
        for outcome in _outcomes(run):
            days.update(outcome.get("days") or [])
            done += 1
            _progress(
                event="run",
                dag=outcome["stream"],
                window_end=end.isoformat(),
                state="success" if outcome["loaded"] else "failed",
                done=done,
                total=hours * len(streams),
            )
        _progress(event="window", dag=hub.dag_id, window_end=end.isoformat(), state=str(run.state))
    if feeds and days:
        run = hub.test(run_conf={"streams": [], "feeds": feeds, "days": sorted(days)})
        failures += not _succeeded(run)
        for feed in feeds:
            _progress(event="publish", dag=hub.dag_id, feed=feed, state=str(run.state))
    return failures


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: prepare Airflow, run the windows, exit non-zero on any failure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stream", required=True, action="append", help="a stream to ingest (repeatable)")
    parser.add_argument("--end", required=True, type=datetime.fromisoformat, help="end of the first window")
    parser.add_argument("--hours", type=int, default=1)
    parser.add_argument("--publish", action="store_true", help="then publish the feeds built from these streams")
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
    failures = run_windows(args.stream, args.end, args.hours, args.publish)
    return 1 if failures else 0


def unpause_dags() -> int:
    """Unpause every DAG of the metadata DB (a demo's batch day created them paused; the hub
    that then runs for real must run them on schedule). Returns how many were paused."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        result = session.execute(update(DagModel).where(DagModel.is_paused.is_(True)).values(is_paused=False))
        return int(getattr(result, "rowcount", 0) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
