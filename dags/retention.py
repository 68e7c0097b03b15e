"""### retention — forget on time

Daily: deletes raw-vault objects and the drop folders' sealed exports past
`vault_retention_days` (sealing any an older hub left in clear), quarantine rows past
`quarantine_retention_days`, work files a failed run left, service logs past
`service_log_retention_days` and this Airflow's own logs (task tries, scheduler, DAG
processor: its `[logging] base_log_folder`) past `task_log_retention_days`, and appends one audit-log
entry per purge or seal (what, when, under which retention), so community admins can check
that raw data does not outlive its promise (docs/privacy-lifecycle.md).
One per community in a subdistrict suite. The task opens the DuckDB warehouse, so it takes
the community's one-slot pool.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from neuron.dag_factory import START, TIMEZONE, community_tags, dag_suffix, default_args, duckdb_pool, suite_communities


def retention_dag(community: str | None) -> DAG:
    """The daily retention purge of one hub (or one community's)."""

    @dag(
        dag_id="retention" + dag_suffix(community),
        schedule=CronTriggerTimetable("30 3 * * *", timezone=TIMEZONE),  # after the night's quiet hours
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["neuron", "privacy", "retention", *community_tags(community)],
        default_args={**default_args(timedelta(minutes=30)), "retry_delay": timedelta(minutes=5)},
        doc_md=__doc__,
    )
    def retention() -> None:
        @task(pool=duckdb_pool(community))
        def purge() -> dict[str, Any]:
            from pathlib import Path

            from airflow.configuration import conf

            from neuron.tasks import run_stage
            from warehouse.retention import run_retention

            # This Airflow's own log folder, wherever its deployment put it.
            task_logs = Path(conf.get("logging", "base_log_folder"))
            return run_stage(run_retention, None, task_logs, community=community).summary()

        purge()

    built: DAG = retention()
    return built


for _community in suite_communities():
    _dag = retention_dag(_community)
    globals()[_dag.dag_id] = _dag
