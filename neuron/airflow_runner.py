"""Run the hub's DAG through Airflow for consecutive windows, in this process (`dag.test()`).

For each hourly window the `hub` DAG runs once, ingesting the named streams that are due
(`conf["streams"]`) without publishing; then one more run publishes each feed built from
those streams once, for the local days the windows touched (`conf["feeds"]`,
`conf["days"]`): one marts build instead of one per window. The demo and
the tests start it as a child process with their own AIRFLOW_HOME (Airflow reads its
configuration once, at import). Progress goes to stdout as `NEURON-PROGRESS` JSON lines;
Airflow's own logs go wherever the parent sends stderr.

    python -m neuron.airflow_runner --stream vehicle_passes --end 2026-11-21T00:00+08:00 --hours 24 --publish

A plan (`--plan FILE`, JSON) runs groups of streams each on its own cadence instead: a group
names a cron (NEURON_DAG_CADENCE while the hub DAG is parsed: a manual run's data interval
is the last whole interval of that cron before the run's logical date, and every named
stream is due in it), its streams and the logical dates to run them at; `--publish` then
publishes every feed once. A window is never run before it has ended (the runner waits):
the MQTT landing and the relay's records are complete only up to now.

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


@dataclass(frozen=True)
class Group:
    """Streams run on one cadence: the hub DAG once per logical date in `ends`, ingesting them."""

    cadence: str | None  # a cron for NEURON_DAG_CADENCE; None: each stream's own schedule
    dags: list[str]  # the streams (named `dags` for the plan files' compatibility)
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


def _hub_dag() -> Any:
    """The hub DAG as the DAG files parse now (under the current NEURON_DAG_CADENCE)."""
    from airflow.dag_processing.dagbag import DagBag

    from neuron.dag_factory import hub_dag_id

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        _progress(event="import_errors", errors=list(bag.import_errors))
        return None
    return bag.dags[hub_dag_id()]


def run_plan(plan: list[Group | LaterGroup], publish: bool) -> int:
    """Run the hub DAG for each group's streams at each of its logical dates (parsed under the
    group's cadence), then publish every feed once; returns the number of failed runs."""
    from schemas.feeds import load_feeds

    total = sum(len(g.dags) * (len(g.ends) if isinstance(g, Group) else 1) for g in plan)
    failures = done = 0
    days: set[str] = set()
    for entry in plan:
        if isinstance(entry, LaterGroup):
            _progress(event="later", dags=len(entry.dags))
        group = entry.wait() if isinstance(entry, LaterGroup) else entry
        if not group.dags:
            continue
        # Read at parse time by the DAG file (and by each dag.test()'s re-sync of the bundle).
        if group.cadence:
            os.environ["NEURON_DAG_CADENCE"] = group.cadence
        else:
            os.environ.pop("NEURON_DAG_CADENCE", None)
        hub = _hub_dag()
        if hub is None:
            return total
        for end in group.ends:
            _wait_until(end)
            run = hub.test(logical_date=end, run_conf={"streams": group.dags, "publish": False})
            failures += not _succeeded(run)
            for outcome in _outcomes(run):
                days.update(outcome.get("days") or [])
                done += 1
                state = "success" if outcome["loaded"] else "failed"
                _progress(
                    event="run", dag=outcome["stream"], window_end=end.isoformat(), state=state, done=done, total=total
                )
    # Every dag.test() re-syncs the DAG file to the metadata DB as it parses now: back to the
    # suite's own schedule, so a scheduler started next (`neuron up`) runs hourly windows, not
    # the plan's last cadence.
    os.environ.pop("NEURON_DAG_CADENCE", None)
    hub = _hub_dag()
    if hub is None:
        return total
    if publish and days:
        feeds = sorted(load_feeds())
        run = hub.test(run_conf={"streams": [], "feeds": feeds, "days": sorted(days)})
        failures += not _succeeded(run)
        for feed in feeds:
            _progress(event="publish", dag=hub.dag_id, feed=feed, state=str(run.state))
    return failures


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: prepare Airflow, run the windows, exit non-zero on any failure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stream", action="append", help="a stream to ingest (repeatable)")
    parser.add_argument("--end", type=datetime.fromisoformat, help="end of the first window")
    parser.add_argument("--plan", type=Path, help="a JSON plan of groups (instead of --stream/--end/--hours)")
    parser.add_argument("--hours", type=int, default=1)
    parser.add_argument("--publish", action="store_true", help="then publish the feeds built from these streams")
    args = parser.parse_args(argv)
    if args.plan is None and not (args.stream and args.end):
        parser.error("give --plan, or --stream and --end")
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
