"""### retention — forget on time

Daily: deletes raw-vault objects past `vault_retention_days` and quarantine rows past
`quarantine_retention_days`, and appends one audit-log entry per purge (what, when, under
which retention), so community admins can check that raw data does not outlive its promise.
The task opens the DuckDB warehouse, so it shares the one-slot `duckdb_writer` pool.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable


@dag(
    schedule=CronTriggerTimetable("30 3 * * *", timezone="Asia/Shanghai"),  # after the night's quiet hours
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["neuron", "privacy", "retention"],
    default_args={
        "owner": "neuron-hub",
        "retries": 3,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(minutes=30),
    },
    doc_md=__doc__,
)
def retention() -> None:
    @task(pool="duckdb_writer")
    def purge() -> dict[str, Any]:
        from neuron.tasks import run_stage
        from privacy.retention import run_retention

        return run_stage(run_retention).summary()

    purge()


retention()
