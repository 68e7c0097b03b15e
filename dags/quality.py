"""### quality — the daily data-quality report

Daily, after the night's loads: writes the hub's data-quality report (per stream and
feed: rows, quarantine shares and reasons, expectation results, freshness against the
watermark) as `quality.json` and `quality.html` under `<state>/quality/` (what
`neuron quality --out` writes by hand).
The report reads the DuckDB warehouse, so it takes the one-slot `duckdb_writer` pool.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from neuron.dag_factory import DUCKDB_POOL, START, default_args


@dag(
    schedule=CronTriggerTimetable("15 7 * * *", timezone="Asia/Shanghai"),  # after the 06:00 file drops
    start_date=START,
    catchup=False,
    max_active_runs=1,
    tags=["neuron", "quality"],
    default_args=default_args(timedelta(minutes=20)),
    doc_md=__doc__,
)
def quality() -> None:
    @task(pool=DUCKDB_POOL)
    def write_report() -> list[str]:
        from neuron.tasks import run_stage

        def report(settings: Any) -> list[str]:
            # Imported in the task: the quality module is heavy to import.
            from warehouse.quality import write_report as write

            return [str(path) for path in write(settings, settings.state_path / "quality")]

        return run_stage(report)

    write_report()


quality()
