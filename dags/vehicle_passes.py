"""
### vehicle_passes — system 1, vehicle gates (机动车进出自动识别和收费)

Every hour: read the passes the parking vendor updated in the data interval, land them
encrypted in the raw vault, validate them against the contract (bad rows to
quarantine), pseudonymise the plates, load them into DuckDB staging, rebuild the
marts, and publish `traffic.vehicle_flow_hourly` to every consumer its policy grants.

Tasks are thin: each calls one stage of `warehouse.pipeline`. XCom carries the batch id
and the touched days, never rows. Stages that open DuckDB share the `duckdb_writer`
pool of one slot. Re-running a window replaces its batch; nothing doubles.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

DUCKDB_POOL = "duckdb_writer"


@dag(
    # An explicit data-interval timetable: Airflow 3's cron default has zero-width intervals,
    # and each run must read exactly one hour of source updates.
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="Asia/Shanghai"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["neuron", "ingest", "system-1"],
    default_args={
        "owner": "neuron-hub",
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(minutes=20),
    },
    doc_md=__doc__,
)
def vehicle_passes() -> None:
    @task
    def extract(data_interval_start: Any = None, data_interval_end: Any = None) -> str:
        from neuron.tasks import as_datetime, run_stage
        from warehouse.pipeline import extract

        return run_stage(extract, "vehicle_passes", as_datetime(data_interval_start), as_datetime(data_interval_end))

    @task
    def validate(batch_id: str) -> str:
        from neuron.tasks import run_stage
        from warehouse.pipeline import validate

        run_stage(validate, batch_id)
        return batch_id

    @task(pool=DUCKDB_POOL)
    def load(batch_id: str) -> list[str]:
        from neuron.tasks import run_stage
        from warehouse.pipeline import load

        return run_stage(load, batch_id)

    @task(pool=DUCKDB_POOL)
    def build_marts(days: list[str]) -> list[str]:
        from neuron.tasks import run_stage
        from warehouse.pipeline import build

        run_stage(build)
        return days

    @task(pool=DUCKDB_POOL)
    def publish(days: list[str]) -> int:
        from neuron.tasks import run_stage
        from warehouse.pipeline import publish

        return len(run_stage(publish, days, ["traffic.vehicle_flow_hourly"]))

    # TaskFlow passes XComArgs between tasks; at run time each arrives as the value.
    publish(build_marts(load(validate(extract()))))  # type: ignore[arg-type]


vehicle_passes()
