"""A simulated day through the real Airflow scheduler (`neuron up`: scheduler, DAG processor,
API server; LocalExecutor, PostgreSQL metadata), then on CeleryExecutor with two workers (Redis broker,
PostgreSQL metadata and control DB): the `hub` DAG's run succeeds, every feed is published, a
backfill changes nothing, no plate reaches a log, and both equal the same day run on one
machine without Airflow.

Budget: the LocalExecutor day is one daily window of every stream some feed is built from
(tests/dags/day_sources.py sets them up), about 3 min on two cores; the Celery day stays on the
parking vendor's `vehicle_passes` (tests/dags/scheduler_day.py), about 1.5 min.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from kernel.settings import load_settings
from neuron.dag_factory import hub_dag_id
from privacy.keys import init_keys
from privacy.policy import load_policies
from schemas.feeds import load_feeds
from simulator.parking import ParkingSimulator
from simulator.server import start_parking_api
from tests.conftest import TOKEN
from tests.dags.airflow_hub import MASTER_SECRET, consumer_keys, published, register_public_security
from tests.dags.day_sources import ALL_STREAMS, prepare_sources, sources_env
from tests.dags.scheduler_day import (
    DAY_STREAMS,
    day_feeds,
    reference_day,
    run_the_day,
    running_hub,
    simulated_day,
)
from tests.leaks import find_leaks
from tests.services import require, temporary_postgres_database
from warehouse.migrations import migrate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # ~3 min alone; 10+ on the shared, loaded cores


def _sha256s(rows: list[tuple[str, str, str, int, str, int]]) -> set[tuple[str, str, str, str]]:
    return {(consumer, feed, key, sha) for consumer, feed, key, _, sha, _ in rows}


def _reference(tmp_path: Path, vendor_url: str, keys: tuple[bytes, bytes]) -> set[tuple[str, str, str, str]]:
    settings = load_settings(
        home=tmp_path / "reference",
        master_secret=MASTER_SECRET,
        control_db_url="",
        parking={"base_url": vendor_url, "token": TOKEN},
    )
    init_keys(settings)
    migrate(settings.control_url)
    register_public_security(settings, keys)
    reference_day(settings, simulated_day())
    return _sha256s(published(settings))


def _assert_day_done(result: dict[str, object], feeds_published: set[str], streams: list[str] = DAY_STREAMS) -> None:
    runs = result["runs"]
    assert isinstance(runs, list)
    assert {state for _, _, state in runs} == {"success"}, runs
    assert {dag for dag, _, _ in runs} == {hub_dag_id()}  # one DAG runs the whole window
    assert feeds_published >= set(day_feeds(streams, complete=True))


def _assert_every_feed_published(hub_settings: object, rows: list[tuple[str, str, str, int, str, int]]) -> None:
    """Every feed of schemas/feeds/ has rows published to every consumer whose policy grants it."""
    policies = load_policies(hub_settings.policies_dir)  # type: ignore[attr-defined]
    wanted = {(c, f) for c, p in policies.items() for f in load_feeds() if p.grants(f)}
    assert {f for _, f in wanted} == set(load_feeds())
    got = {(consumer, feed) for consumer, feed, _, _, _, count in rows if count > 0}
    assert wanted <= got, sorted(wanted - got)


def test_a_day_through_the_scheduler_publishes_every_feed_and_a_backfill_changes_nothing(tmp_path: Path) -> None:
    sim, keys = ParkingSimulator(seed=7), consumer_keys()
    home = tmp_path / "hub"
    # LocalExecutor on PostgreSQL, Airflow's one-machine production setup: on SQLite a CLI
    # write (the backfill) racing the scheduler's can fail half-way ("database is locked").
    with start_parking_api(sim, token=TOKEN) as vendor, temporary_postgres_database() as metadata:
        database = {f"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN{s}": metadata for s in ("", "_ASYNC")}
        env = {**database, **sources_env(home)}
        with running_hub(home, vendor.url, env, streams=ALL_STREAMS) as hub:
            # The sources' day, with the hub's master secret (what its tasks use), before any DAG runs.
            sources = load_settings(home=home, master_secret=MASTER_SECRET, control_db_url="")
            identifiers = prepare_sources(sources, simulated_day(), sim)
            register_public_security(hub.settings, keys)
            result = run_the_day(hub)
            first = published(hub.settings)
            _assert_day_done(result, {feed for _, feed, *_ in first}, ALL_STREAMS)
            _assert_every_feed_published(hub.settings, first)
            # A backfill of the same day, run by the scheduler: every due stream again, then
            # its feeds again.
            start = simulated_day()
            logical = f"{start.isoformat()}T00:00:00+08:00"
            runs_before = len(hub.runs())
            hub.airflow(
                "backfill", "create", "--dag-id", hub_dag_id(), "--from-date", logical, "--to-date", logical,
                "--reprocess-behavior", "completed",
            )  # fmt: skip
            run_the_day(hub)
            # Airflow 3 re-runs the existing run of that date inside the backfill (cleared
            # and run again): both tasks a second time, no new run.
            backfill = hub.query("SELECT dag_run_id, exception_reason FROM backfill_dag_run")
            tries = hub.query("SELECT task_id, try_number FROM task_instance WHERE dag_id = 'hub'")
            assert len(backfill) == 1 and backfill[0][0] is not None, (backfill, tries, hub.runs())
            assert sorted(tries) == [("ingest", 2), ("publish", 2)], tries
            assert len(hub.runs()) == runs_before
            assert {s for _, _, s in hub.runs()} == {"success"}
            assert published(hub.settings) == first  # identical partitions, no new version
        assert hub.proc.returncode == 0, "".join(hub.lines[-40:])  # SIGTERM: a graceful stop
        assert any("stopping" in line for line in hub.lines)
        # No plate, nor any raw identifier of the other sources, in anything the hub or
        # Airflow logged (task logs included).
        logs = [(str(p), p.read_text(errors="ignore")) for p in home.rglob("*.log")]
        assert len(logs) > 5
        assert find_leaks(sim.all_plates() | identifiers, [("neuron up", "".join(hub.lines)), *logs]) == []
        # The parking feeds equal the same day run without Airflow (the reference runs that vendor only).
        parking_feeds = set(day_feeds())
        day = {row for row in _sha256s(first) if row[1] in parking_feeds}
        assert day == _reference(tmp_path, vendor.url, keys)


def test_a_day_on_celery_workers_equals_the_single_machine_run(tmp_path: Path) -> None:
    require(6379, "Redis")
    with temporary_postgres_database() as metadata, temporary_postgres_database() as control:
        queue = f"neuron-test-{uuid.uuid4().hex[:8]}"  # our workers only take our tasks
        celery = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
            # psycopg 3 is async too: without this Airflow would reach for asyncpg.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata,
            "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata,
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "AIRFLOW__CELERY__DEFAULT_QUEUE": queue,
            "NEURON_CONTROL_DB_URL": control,
        }
        sim, keys = ParkingSimulator(seed=7), consumer_keys()
        with start_parking_api(sim, token=TOKEN) as vendor:
            with running_hub(tmp_path / "hub", vendor.url, celery, workers=2) as hub:
                register_public_security(hub.settings, keys)
                result = run_the_day(hub)
                got = published(hub.settings)
                hosts = {r[0] for r in hub.query("SELECT hostname FROM task_instance WHERE hostname IS NOT NULL")}
            assert hub.proc.returncode == 0, "".join(hub.lines[-40:])
            _assert_day_done(result, {feed for _, feed, *_ in got})
            assert any("celery-worker-2" in line for line in hub.lines)
            assert hosts, "no task instance recorded the worker that ran it"
            assert _sha256s(got) == _reference(tmp_path, vendor.url, keys)
