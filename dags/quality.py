"""### quality — the daily data-quality report

Daily, after the night's loads: writes the hub's data-quality report (per stream and
feed: rows, quarantine shares and reasons, expectation results, freshness against the
watermark) as `quality.json` and `quality.html` under `<state>/quality/` (what
`neuron quality --out` writes by hand). One per community in a subdistrict suite.
The report reads the DuckDB warehouse, so it takes the community's one-slot pool.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from neuron.dag_factory import START, TIMEZONE, community_tags, dag_suffix, default_args, duckdb_pool, suite_communities


def quality_dag(community: str | None) -> DAG:
    """The daily quality report of one hub (or one community's)."""

    @dag(
        dag_id="quality" + dag_suffix(community),
        schedule=CronTriggerTimetable("15 7 * * *", timezone=TIMEZONE),  # after the 06:00 file drops
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["neuron", "quality", *community_tags(community)],
        default_args=default_args(timedelta(minutes=20)),
        doc_md=__doc__,
    )
    def quality() -> None:
        @task(pool=duckdb_pool(community))
        def write_report() -> list[str]:
            from neuron.tasks import run_stage

            def report(settings: Any) -> list[str]:
                # Imported in the task: the quality module is heavy to import.
                from warehouse.quality import write_report as write

                return [str(path) for path in write(settings, settings.state_path / "quality")]

            return run_stage(report, community=community)

        write_report()

    built: DAG = quality()
    return built


for _community in suite_communities():
    _dag = quality_dag(_community)
    globals()[_dag.dag_id] = _dag
