"""Run the hub's DAGs through Airflow for consecutive windows, in this process (`dag.test()`).

For each hourly window, every named ingest DAG runs once; then each feed built from those
streams is published once by its publish DAG (a manual run: `conf["days"]`, the local days
the windows touched, stands in for the Asset events the scheduler would pass). The demo and
the tests start it as a child process with their own AIRFLOW_HOME (Airflow reads its
configuration once, at import). Progress goes to stdout as `NEURON-PROGRESS` JSON lines;
Airflow's own logs go wherever the parent sends stderr.

    python -m neuron.airflow_runner --dag vehicle_passes --end 2026-11-21T00:00+08:00 --hours 24 --publish

A plan (`--plan FILE`, JSON) runs groups of DAGs each on its own cadence instead: a group
names a cron (NEURON_DAG_CADENCE while its DAGs are parsed: a manual run's data interval
is the last whole interval of that cron before the run's logical date), its DAGs and the
logical dates to run them at; `--publish` then runs every feed's publish DAG. A window is
never run before it has ended (the runner waits): the MQTT landing and the relay's records
are complete only up to now.

    [{"cadence": "0 0 * * *", "dags": ["vehicle_passes"], "ends": ["2026-11-21T00:00+08:00"]}]

A group may also be given later: `{"dags": [...], "later": "PATH"}` makes the runner wait,
once the groups before it have run, for PATH to hold that group (the demo writes it once
the device day has landed, while Airflow already runs the other streams).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
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


def runner_command(dag_id: str | list[str], first_end: datetime, hours: int, publish: bool = True) -> list[str]:
    """The command that runs the ingest DAG(s) for `hours` hourly windows, then (by default)
    the publish DAGs of their feeds, in a child process."""
    dags = [dag_id] if isinstance(dag_id, str) else dag_id
    cmd = [sys.executable, "-m", "neuron.airflow_runner"]
    for name in dags:
        cmd += ["--dag", name]
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


def _loaded_days(run: Any) -> list[str]:
    """The days the run's load task returned (its XCom), if it ran."""
    for ti in run.get_task_instances():
        if ti.task_id == "load":
            value = ti.xcom_pull(task_ids="load")
            return list(value or [])
    return []


def run_windows(dag_ids: list[str], first_end: datetime, hours: int, publish: bool) -> int:
    """Run each ingest DAG once per hourly window (the first ending at `first_end`), then the
    publish DAG of every feed built from them; returns the number of failed runs."""
    from airflow.dag_processing.dagbag import DagBag

    from neuron.dag_factory import publish_dag_id
    from schemas.feeds import load_feeds

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        _progress(event="import_errors", errors=list(bag.import_errors))
        return hours
    feeds = sorted(name for name, feed in load_feeds().items() if set(dag_ids) & set(feed.sources)) if publish else []
    total = hours * len(dag_ids)
    failures = done = 0
    days: set[str] = set()
    for i in range(hours):
        # A manual run's data interval is the hour that ends at its logical date.
        end = first_end + timedelta(hours=i)
        for dag_id in dag_ids:
            run = bag.dags[dag_id].test(logical_date=end)
            failures += not _succeeded(run)
            days.update(_loaded_days(run))
            done += 1
            _progress(event="run", dag=dag_id, window_end=end.isoformat(), state=str(run.state), done=done, total=total)
    for feed in feeds:
        run = bag.dags[publish_dag_id(feed)].test(run_conf={"days": sorted(days)})
        failures += not _succeeded(run)
        _progress(event="publish", dag=publish_dag_id(feed), feed=feed, state=str(run.state))
    return failures


@dataclass(frozen=True)
class Group:
    """DAGs run on one cadence: each once per logical date in `ends`."""

    cadence: str | None  # a cron for NEURON_DAG_CADENCE; None: each stream's own schedule
    dags: list[str]
    ends: list[datetime]

    def to_json(self) -> dict[str, Any]:
        return {"cadence": self.cadence, "dags": self.dags, "ends": [e.isoformat() for e in self.ends]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Group:
        return cls(data.get("cadence"), list(data["dags"]), [datetime.fromisoformat(e) for e in data["ends"]])


@dataclass(frozen=True)
class LaterGroup:
    """A group whose cadence and windows are known only later: written to `path` then."""

    dags: list[str]
    path: Path

    def to_json(self) -> dict[str, Any]:
        return {"dags": self.dags, "later": str(self.path)}

    def give(self, group: Group) -> None:
        """Hand the runner the group (atomically: it never reads half a file)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(group.to_json()))
        os.replace(tmp, self.path)

    def wait(self, poll: float = 0.5) -> Group:
        import time

        while not self.path.exists():
            time.sleep(poll)
        return Group.from_json(json.loads(self.path.read_text()))


def _plan_entry(data: dict[str, Any]) -> Group | LaterGroup:
    return LaterGroup(list(data["dags"]), Path(data["later"])) if "later" in data else Group.from_json(data)


def plan_command(plan_file: Path, groups: list[Group | LaterGroup], publish: bool = True) -> list[str]:
    """Write `groups` to `plan_file` and return the command that runs them in a child process."""
    plan_file.write_text(json.dumps([g.to_json() for g in groups]))
    cmd = [sys.executable, "-m", "neuron.airflow_runner", "--plan", str(plan_file)]
    return cmd + (["--publish"] if publish else [])


def _wait_until(end: datetime) -> None:
    """Sleep until `end` has passed: a window is complete only once it is over."""
    import time

    delay = (end - datetime.now(end.tzinfo)).total_seconds()
    if delay > 0:
        _progress(event="wait", until=end.isoformat(), seconds=round(delay, 1))
        time.sleep(delay + 1)


def run_plan(plan: list[Group | LaterGroup], publish: bool) -> int:
    """Run each group's DAGs at each of its logical dates (parsed under its cadence), then the
    publish DAG of every feed; returns the number of failed runs."""
    from airflow.dag_processing.dagbag import DagBag

    from neuron.dag_factory import publish_dag_id
    from schemas.feeds import load_feeds

    total = sum(len(g.dags) * (len(g.ends) if isinstance(g, Group) else 1) for g in plan)
    failures = done = 0
    days: set[str] = set()
    bag = None
    for entry in plan:
        if isinstance(entry, LaterGroup):
            _progress(event="later", dags=len(entry.dags))
        group = entry.wait() if isinstance(entry, LaterGroup) else entry
        # Read at parse time by the DAG files (and by each dag.test()'s re-sync of the bundle).
        if group.cadence:
            os.environ["NEURON_DAG_CADENCE"] = group.cadence
        else:
            os.environ.pop("NEURON_DAG_CADENCE", None)
        bag = DagBag(dag_folder=str(DAGS_FOLDER))
        if bag.import_errors:
            _progress(event="import_errors", errors=list(bag.import_errors))
            return total
        for end in group.ends:
            _wait_until(end)
            for dag_id in group.dags:
                run = bag.dags[dag_id].test(logical_date=end)
                failures += not _succeeded(run)
                days.update(_loaded_days(run))
                done += 1
                _progress(
                    event="run", dag=dag_id, window_end=end.isoformat(), state=str(run.state), done=done, total=total
                )
    if publish and bag is not None:
        # Every dag.test() re-syncs the DAG files to the metadata DB as they parse now: back to
        # each stream's own schedule, so a scheduler started next (`neuron up`) runs the suite's
        # cadence, not the plan's last one.
        os.environ.pop("NEURON_DAG_CADENCE", None)
        bag = DagBag(dag_folder=str(DAGS_FOLDER))
        for feed in sorted(load_feeds()):
            dag_id = publish_dag_id(feed)
            if dag_id not in bag.dags:
                continue
            run = bag.dags[dag_id].test(run_conf={"days": sorted(days)})
            failures += not _succeeded(run)
            _progress(event="publish", dag=dag_id, feed=feed, state=str(run.state))
    return failures


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: prepare Airflow, run the windows, exit non-zero on any failure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dag", action="append", help="an ingest DAG (repeatable)")
    parser.add_argument("--end", type=datetime.fromisoformat, help="end of the first window")
    parser.add_argument("--plan", type=Path, help="a JSON plan of groups (instead of --dag/--end/--hours)")
    parser.add_argument("--hours", type=int, default=1)
    parser.add_argument("--publish", action="store_true", help="then publish the feeds built from these streams")
    args = parser.parse_args(argv)
    if args.plan is None and not (args.dag and args.end):
        parser.error("give --plan, or --dag and --end")
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
    if args.plan is not None:
        failures = run_plan([_plan_entry(g) for g in json.loads(args.plan.read_text())], args.publish)
    else:
        failures = run_windows(args.dag, args.end, args.hours, args.publish)
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
