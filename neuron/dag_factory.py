"""The ingest DAG of a source stream, built from its registry entry (connectors/registry.py).

One shape for every stream: extract → validate → load → build_marts → publish, for the
stream's data interval. Tasks are thin (each calls one stage of `warehouse.pipeline`,
importing lazily), XCom carries ids and day lists only, and the stages that open DuckDB
share the one-slot `duckdb_writer` pool.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from connectors.registry import StreamSpec

DUCKDB_POOL = "duckdb_writer"
TIMEZONE = "Asia/Shanghai"

DOC = """
### {name} — system {system}: {title}

Every run reads what the source updated in the run's data interval, lands it encrypted
in the raw vault, validates it against the `{name}` contract (bad rows to quarantine
with a reason), pseudonymises direct identifiers, loads the batch into DuckDB staging
(replacing an earlier run of the same window), rebuilds the marts, and publishes the
feeds built from this stream to every consumer whose policy grants them.

Retries: transient source errors are retried with backoff; fatal ones (credentials
refused, a batch over its failure budget, a broken contract) fail at once.
"""


def ingest_dag(spec: StreamSpec) -> DAG:
    """The Airflow DAG that ingests `spec`'s stream on its schedule."""

    @dag(
        dag_id=spec.name,
        # An explicit data-interval timetable: Airflow 3's cron default has zero-width
        # intervals, and each run must read exactly its window of source updates.
        schedule=CronDataIntervalTimetable(spec.schedule, timezone=TIMEZONE),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["neuron", "ingest", f"system-{spec.system}"],
        default_args={
            "owner": "neuron-hub",
            "retries": 3,
            "retry_delay": timedelta(seconds=30),
            "retry_exponential_backoff": True,
            "execution_timeout": timedelta(minutes=20),
        },
        doc_md=DOC.format(name=spec.name, system=spec.system, title=spec.title),
    )
    def ingest() -> None:
        @task
        def extract(data_interval_start: Any = None, data_interval_end: Any = None) -> str:
            from neuron.tasks import as_datetime, run_stage
            from warehouse.pipeline import extract

            return run_stage(extract, spec.name, as_datetime(data_interval_start), as_datetime(data_interval_end))

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
            from schemas.feeds import feeds_built_from
            from warehouse.pipeline import publish

            return len(run_stage(publish, days, feeds_built_from(spec.name)))

        # TaskFlow passes XComArgs between tasks; at run time each arrives as the value.
        publish(build_marts(load(validate(extract()))))  # type: ignore[arg-type]

    built: DAG = ingest()
    return built
