"""### key_rotation — a fresh signing key on schedule

Starts a new Ed25519 signing key for the hub on the cadence in NEURON_KEY_ROTATION_CRON
(default: quarterly, 1 Jan/Apr/Jul/Oct at 04:00) and re-signs every partition manifest
with it, so consumers verifying with the current JWKS verify every partition. The old key
stops signing and stays in the JWKS (`/.well-known/jwks.json`) for
`signature_lifetime_days` (90) for what is short-lived. A re-run of the same interval finds
the key it made, rotates nothing and re-signs only what still carries an older signature;
each rotation and re-signing is audited. One per
community in a subdistrict suite (each community's hub has its own keys).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from neuron.dag_factory import START, TIMEZONE, community_tags, dag_suffix, default_args, suite_communities

CADENCE = os.environ.get("NEURON_KEY_ROTATION_CRON") or "0 4 1 1,4,7,10 *"


def key_rotation_dag(community: str | None) -> DAG:
    """The scheduled signing-key rotation of one hub (or one community's)."""

    @dag(
        dag_id="key_rotation" + dag_suffix(community),
        schedule=CronDataIntervalTimetable(CADENCE, TIMEZONE),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["neuron", "privacy", "keys", *community_tags(community)],
        default_args=default_args(timedelta(minutes=5)),
        doc_md=__doc__,
    )
    def key_rotation() -> None:
        @task
        def rotate(data_interval_end: Any = None) -> dict[str, Any]:
            from neuron.tasks import as_datetime, rotate_signing_key_if_due, run_stage

            # Due when the active key predates the end of this interval (the scheduled time).
            return run_stage(rotate_signing_key_if_due, as_datetime(data_interval_end), community=community)

        rotate()

    built: DAG = key_rotation()
    return built


for _community in suite_communities():
    _dag = key_rotation_dag(_community)
    globals()[_dag.dag_id] = _dag
