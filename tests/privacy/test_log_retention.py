"""Logs are forgotten on time (issue 16, item 2): `neuron up`'s service logs roll over daily and
`neuron retention run` deletes days past `service_log_retention_days`; Airflow's task logs past
`task_log_retention_days` go too, with the folders they leave empty. Fresh ones stay."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from kernel.daily_log import DailyLog
from kernel.settings import Settings
from privacy.keys import init_keys
from tests.conftest import make_settings
from warehouse.control import session_scope
from warehouse.migrations import migrate
from warehouse.models import AuditEntry
from warehouse.retention import run_retention

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def hub(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path / "hub", service_log_retention_days=14, task_log_retention_days=30)
    init_keys(settings)
    migrate(settings.control_url)
    return settings


def written(path: Path, days_ago: float, text: str = "a line\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    at = (NOW - timedelta(days=days_ago)).timestamp()
    os.utime(path, (at, at))
    return path


def test_a_service_log_rolls_over_to_a_file_per_day(tmp_path: Path) -> None:
    path = written(tmp_path / "logs" / "relay.log", 1, "from yesterday's run\n")
    day = NOW.date()
    days = iter([day, day, day + timedelta(days=1)])  # opened today; the day changes before the second line

    with DailyLog(path, lambda: next(days)) as log:  # yesterday's file is moved aside
        log.write("today\n")
        os.utime(path, (NOW.timestamp(), NOW.timestamp()))
        log.write("tomorrow\n")
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "relay.log",
        f"relay.log.{day - timedelta(days=1)}",
        f"relay.log.{day}",
    ]
    assert (path.parent / f"relay.log.{day - timedelta(days=1)}").read_text() == "from yesterday's run\n"
    assert (path.parent / f"relay.log.{day}").read_text() == "today\n"
    assert path.read_text() == "tomorrow\n"


def test_retention_deletes_old_service_and_task_logs_and_keeps_fresh_ones(tmp_path: Path) -> None:
    settings = hub(tmp_path)
    logs = settings.state_path / "logs"
    old_service = [written(logs / "relay.log.2026-11-01", 36), written(logs / "collector.log", 20)]
    fresh_service = [written(logs / "relay.log", 0.1), written(logs / "inbox.log.2026-11-30", 7)]
    airflow = settings.state_path / "airflow" / "logs"
    old_try = written(airflow / "dag_id=pipeline" / "run_id=r1" / "task_id=load" / "attempt=1.log", 40)
    fresh_try = written(airflow / "dag_id=pipeline" / "run_id=r2" / "task_id=load" / "attempt=1.log", 2)
    old_scheduler = written(airflow / "scheduler" / "2026-10-01" / "pipeline.py.log", 67)
    (airflow / "scheduler" / "latest").symlink_to(old_scheduler.parent)

    report = run_retention(settings, now=NOW)

    assert sorted(report.service_logs) == ["collector.log", "relay.log.2026-11-01"]
    assert not any(p.exists() for p in old_service) and all(p.exists() for p in fresh_service)
    assert not old_try.exists() and not old_scheduler.exists() and fresh_try.exists()
    assert len(report.task_logs) == 2
    # The folders they leave empty go with them, and the link to one of them.
    assert not (airflow / "dag_id=pipeline" / "run_id=r1").exists()
    assert not (airflow / "scheduler").exists()
    with session_scope(settings.control_url) as s:
        details = [e.detail or "" for e in s.scalars(select(AuditEntry).where(AuditEntry.action == "purge"))]
    assert any('"store":"service_logs"' in d and '"files":2' in d for d in details)
    assert any('"store":"task_logs"' in d and '"retention_days":30' in d for d in details)

    again = run_retention(settings, now=NOW)  # nothing more is old
    assert again.service_logs == [] and again.task_logs == []


def test_the_dags_airflow_log_folder_is_purged_where_airflow_keeps_it(tmp_path: Path) -> None:
    settings = hub(tmp_path)
    elsewhere = tmp_path / "airflow-home" / "logs"
    old = written(elsewhere / "dag_id=retention" / "run_id=r1" / "task_id=purge" / "attempt=1.log", 31)
    report = run_retention(settings, now=NOW, task_log_dir=elsewhere)
    assert report.task_logs and not old.exists()
