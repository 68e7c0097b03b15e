"""A simulated community-day through the real Airflow scheduler, started by `neuron up`.

Kept small for two cores: by default the `vehicle_passes` stream on a daily cadence
(NEURON_DAG_CADENCE), so the day is one window of the `hub` DAG, which ingests and then
publishes the feeds built from it. The day is yesterday (Shanghai): with `catchup=False`
the scheduler's first run of a daily DAG is exactly that interval. The benchmark instead
runs the day's 24 hourly windows (NEURON_DAG_START/END) of every stream, per community.
Used by tests/dags/test_scheduler.py and bench/scheduler_day.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text

import pipeline
from kernel.settings import REPO_ROOT, Settings, load_settings
from neuron.airflow_runner import SQLITE_CONNECT_ARGS_PATH
from neuron.dag_factory import hub_dag_id
from neuron.up import free_port
from privacy.keys import init_keys
from privacy.tls import ensure_certificate
from schemas.feeds import load_feeds
from tests.dags.airflow_hub import airflow_env, hub_env
from warehouse.migrations import migrate

DAY_STREAMS = ["vehicle_passes"]
DAILY = "0 0 * * *"
TZ = ZoneInfo("Asia/Shanghai")
TERMINAL = {"success", "failed"}


def day_feeds(streams: list[str] = DAY_STREAMS, complete: bool = False) -> list[str]:
    """The feeds built from the day's streams (those with a publish DAG that runs); with
    `complete`, only those built from them alone: what must be published."""
    chosen = set(streams)
    return sorted(
        name
        for name, feed in load_feeds().items()
        if (set(feed.sources) <= chosen if complete else chosen & set(feed.sources))
    )


def simulated_day() -> date:
    """Yesterday in Shanghai: the interval the scheduler runs first for a daily DAG."""
    return datetime.now(TZ).date() - timedelta(days=1)


@dataclass
class RunningHub:
    """`neuron up` in a child process, and how to reach its metadata DB."""

    proc: subprocess.Popen[str]
    env: dict[str, str]
    settings: Settings
    metadata_url: str
    streams: list[str]
    communities: list[str] = field(default_factory=list)  # empty: the single hub of `home`
    lines: list[str] = field(default_factory=list)

    def community_settings(self) -> list[Settings]:
        """The settings of each community's hub (or the one hub)."""
        if not self.communities:
            return [self.settings]
        return [_community(self.settings.home, c, self.env) for c in self.communities]

    def airflow(self, *args: str, timeout: float = 120) -> str:
        """Run an Airflow CLI command against this hub's Airflow."""
        for _ in range(5):
            out = subprocess.run(
                [sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True, text=True, timeout=timeout
            )
            # SQLite (the one-machine default) has one writer: a CLI write can meet the
            # scheduler's, and is tried again (the tests that write, backfill, use PostgreSQL).
            if out.returncode == 0 or "database is locked" not in out.stderr:
                break
        if out.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{out.stderr[-3000:]}")
        return out.stdout

    def query(self, sql: str, **params: Any) -> list[Any]:
        engine = create_engine(self.metadata_url)
        try:
            with engine.connect() as con:
                return list(con.execute(text(sql), params).all())
        finally:
            engine.dispose()

    def wait_for(self, what: str, condition: Any, timeout: float) -> None:
        """Poll `condition()` until true; on timeout, fail with the hub's last log lines."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if condition():
                return
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}; last output:\n" + "".join(self.lines[-60:]))

    def runs(self) -> list[tuple[str, str, str]]:
        """(dag_id, run_type, state) of every DAG run."""
        rows = self.query("SELECT dag_id, run_type, state FROM dag_run ORDER BY id")
        return [(r[0], str(r[1]), str(r[2])) for r in rows]


def _community(home: Path, community: str, env: dict[str, str]) -> Settings:
    # As neuron.tasks.community_settings lays a subdistrict suite out.
    return load_settings(
        home=home / "communities" / community, community_id=community, master_secret=env["NEURON_MASTER_SECRET"]
    )


def _metadata_url(env: dict[str, str]) -> str:
    url = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    return url or f"sqlite:///{Path(env['AIRFLOW_HOME']) / 'airflow.db'}"


@contextmanager
def running_hub(
    home: Path,
    vendor_url: str | None,
    extra_env: dict[str, str] | None = None,
    workers: int = 0,
    streams: list[str] = DAY_STREAMS,
    communities: list[str] | None = None,
    hourly_day: date | None = None,
) -> Iterator[RunningHub]:
    """`neuron up` (Airflow + export API, no collector or relay) for the day's streams; stopped
    with SIGTERM. With `hourly_day`, the hub DAGs catch up that day's 24 hourly windows, each
    stream on its own cadence; otherwise the day is one daily window."""
    if hourly_day is None:
        windows = {"NEURON_DAG_CADENCE": DAILY}
    else:
        # 01:00 to 01:00: the day's 24 windows end with the one where the daily feeds publish (00:30).
        first = datetime.combine(hourly_day, datetime.min.time(), tzinfo=TZ) + timedelta(hours=1)
        last = first + timedelta(hours=23)  # the start of the day's last window
        windows = {"NEURON_DAG_START": first.isoformat(), "NEURON_DAG_END": last.isoformat()}
    env = airflow_env(
        home,
        **hub_env(home, vendor_url),
        NEURON_DAG_STREAMS=",".join(streams),
        **windows,
        NEURON_API__PORT=str(free_port()),
        NEURON_DAG_COMMUNITIES=",".join(communities or []),
        # Only the day's DAGs run: the test unpauses them (quality, retention and key
        # rotation keep their own schedules and are covered elsewhere).
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        **(extra_env or {}),
    )
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env:  # SQLite: the test's CLI calls wait too
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = SQLITE_CONNECT_ARGS_PATH
    settings = load_settings(home=home, control_db_url=env.get("NEURON_CONTROL_DB_URL", ""))
    for each in [settings, *(_community(home, c, env) for c in communities or [])]:
        init_keys(each)
        ensure_certificate(each)  # the export API serves HTTPS (issue 17)
        migrate(each.control_url)
    port = free_port()
    # No collector or relay: they would reach this machine's shared MQTT broker.
    cmd = [sys.executable, "-m", "neuron.cli", "up", "--no-collect", "--no-relay", "--airflow-port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--celery-workers", str(workers)],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    # The CLI picks the Airflow port; every other Airflow process of the test must use it too.
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
    hub = RunningHub(proc, env, settings, _metadata_url(env), streams, list(communities or []))
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: hub.lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        hub.wait_for("neuron up: all healthy", lambda: any("all healthy" in line for line in hub.lines), 240)
        yield hub
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)


def run_the_day(hub: RunningHub, timeout: float = 600, runs_per_dag: int = 1, on_start: Any = None) -> dict[str, Any]:
    """Unpause the day's DAGs and wait until every run they cause has finished (at least
    `runs_per_dag` of each); returns wall time and the tasks' own durations from the
    metadata DB. `on_start()` is called just before unpausing (a benchmark's CPU mark)."""
    communities: list[str | None] = [*hub.communities] or [None]
    wanted = [hub_dag_id(community) for community in communities]
    hub.wait_for(
        "the DAG processor to parse the suite",
        lambda: {r[0] for r in hub.query("SELECT dag_id FROM dag")} >= set(wanted),
        120,
    )
    if on_start is not None:
        on_start()
    started = time.monotonic()
    hub.airflow("dags", "unpause", "-y", "--treat-dag-id-as-regex", "^(" + "|".join(wanted) + ")$")

    def settled() -> bool:
        runs = hub.runs()
        done = [d for d, _, s in runs if s in TERMINAL]
        pending = hub.query("SELECT count(*) FROM asset_dag_run_queue")[0][0]
        enough = all(done.count(d) >= runs_per_dag for d in wanted)
        return enough and all(s in TERMINAL for _, _, s in runs) and pending == 0

    hub.wait_for("every run of the day to finish", settled, timeout)
    wall = time.monotonic() - started
    rows = hub.query(
        "SELECT dag_id, task_id, duration, queued_dttm, start_date, end_date FROM task_instance"
        " WHERE duration IS NOT NULL ORDER BY start_date"
    )
    return {
        "wall_s": wall,
        "tasks": len(rows),
        "task_s": sum(float(r[2]) for r in rows),
        "task_rows": [(r[0], r[1], float(r[2]), str(r[3]), str(r[4]), str(r[5])) for r in rows],
        "runs": hub.runs(),
    }


def reference_day(settings: Settings, day: date, streams: list[str] = DAY_STREAMS) -> None:
    """The same day on one machine without Airflow: every stage in this process."""
    start, end = pipeline.local_day_window(settings, day)
    for stream in streams:
        pipeline.run_window(settings, stream, start, end)
