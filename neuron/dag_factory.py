"""The hub's DAG suite, generated from its registries: an ingest DAG per source stream
(connectors/registry.py) and a publish DAG per feed (schemas/feeds/*.yaml).

Ingest (on the stream's cadence): extract → validate → load. `load` updates the Airflow
Asset `neuron://staging/<stream>` with the local days the batch touched in the event's
extra. Publish (scheduled on the Assets of the feed's sources, any of them): build the
marts, then publish that feed for the days the triggering events name (or every day for
a manual run: publishing is idempotent). Tasks are thin (each calls one stage of
`pipeline.stages`, importing lazily), XCom carries ids and day lists only, and every
task that opens DuckDB takes the one-slot `duckdb_writer` pool.

What the suite contains is read from the environment at parse time (never Airflow
Connections or Variables): NEURON_DAG_STREAMS (comma list, default every stream),
NEURON_DAG_CADENCE (a cron that replaces every stream's cadence, e.g. `0 0 * * *` for
daily windows), NEURON_DAG_COMMUNITIES (comma list: one ingest and publish DAG set per
community of a subdistrict, each community's hub under $NEURON_HOME/communities/<id>) and
NEURON_DAG_DUCKDB_QUEUE (the Celery queue of the DuckDB tasks).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from connectors.registry import STREAMS, StreamSpec
from schemas.feeds import Feed, load_feeds

DUCKDB_POOL = "duckdb_writer"
TIMEZONE = "Asia/Shanghai"
OWNER = "neuron-hub"
START = datetime(2026, 1, 1)

INGEST_DOC = """
### {name} — system {system}: {title}{community}

Every run reads what the source updated in the run's data interval, lands it encrypted
in the raw vault, validates it against the `{name}` contract (bad rows to quarantine
with a reason), pseudonymises direct identifiers and loads the batch into DuckDB staging
(replacing an earlier run of the same window). The load updates the Asset
`{asset}` with the days it touched; the publish DAGs of the feeds built from this stream
({feeds}) run on it.

Retries: transient source errors are retried with backoff; fatal ones (credentials
refused, a batch over its failure budget, a broken contract) fail at once.
"""

PUBLISH_DOC = """
### publish {name}{community}

{title}. Runs {trigger}: rebuilds the marts and publishes `{name}` to every consumer
whose policy grants it, for the local days named in the triggering Asset events (a timed
run: the days of its data interval; a manual run: the days in `conf["days"]`, or all).
Re-publishing unchanged rows writes identical bytes and no new partition version, so
re-runs and backfills are safe.
"""


# When a feed whose sources are not ingest streams is republished.
CADENCE_CRON = {"realtime": "*/15 * * * *", "hourly": "5 * * * *", "daily": "30 0 * * *", "monthly": "0 1 1 * *"}


def default_args(timeout: timedelta, retries: int = 3) -> dict[str, Any]:
    """What every hub task shares: owner, bounded retries with backoff, a timeout."""
    return {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timeout,
    }


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def suite_streams() -> list[StreamSpec]:
    """The streams that get an ingest DAG (NEURON_DAG_STREAMS, default all)."""
    chosen = _env_list("NEURON_DAG_STREAMS")
    unknown = set(chosen) - set(STREAMS)
    if unknown:
        raise ValueError(f"NEURON_DAG_STREAMS names unknown stream(s): {', '.join(sorted(unknown))}")
    return [STREAMS[name] for name in chosen] if chosen else list(STREAMS.values())


def suite_feeds() -> list[Feed]:
    """The feeds that get a publish DAG: every feed with a source in the suite, and every
    feed whose sources are not ingest streams at all (the relay writes them)."""
    streams = {spec.name for spec in suite_streams()}
    return [
        feed
        for _, feed in sorted(load_feeds().items())
        if streams & set(feed.sources) or not set(STREAMS) & set(feed.sources)
    ]


def suite_communities() -> list[str | None]:
    """The communities the suite serves: None is the single hub of NEURON_HOME."""
    return list(_env_list("NEURON_DAG_COMMUNITIES")) or [None]


def duckdb_pool(community: str | None = None) -> str:
    """The one-slot pool of a hub's DuckDB file: each community of a suite has its own file."""
    return DUCKDB_POOL + dag_suffix(community)


def duckdb_queue() -> str:
    """The Celery queue of the tasks that open DuckDB: NEURON_DAG_DUCKDB_QUEUE pins them to
    the worker whose local disk holds the warehouse files (default: Airflow's default queue)."""
    from airflow.configuration import conf

    return os.environ.get("NEURON_DAG_DUCKDB_QUEUE") or conf.get("operators", "default_queue")


def dag_suffix(community: str | None) -> str:
    """What a community's DAG ids end with in a subdistrict suite (nothing for one hub)."""
    return f"__{community.replace('-', '_')}" if community else ""


def community_tags(community: str | None) -> list[str]:
    """The tag that groups a community's DAGs in the UI."""
    return [f"community-{community}"] if community else []


def staging_asset(stream: str, community: str | None = None) -> Asset:
    """The Asset a stream's load updates (one per community in a subdistrict suite)."""
    uri = f"neuron://staging/{stream}" + (f"/{community}" if community else "")
    return Asset(uri=uri, name=uri)


def publish_dag_id(feed: str, community: str | None = None) -> str:
    """`traffic.vehicle_flow_hourly` → `publish_traffic_vehicle_flow_hourly`."""
    return "publish_" + feed.replace(".", "_") + dag_suffix(community)


def ingest_dag(spec: StreamSpec, community: str | None = None) -> DAG:
    """The Airflow DAG that ingests `spec`'s stream on its schedule."""
    asset = staging_asset(spec.name, community)
    feeds = [f.name for f in load_feeds().values() if spec.name in f.sources]

    @dag(
        dag_id=spec.name + dag_suffix(community),
        # An explicit data-interval timetable: Airflow 3's cron default has zero-width
        # intervals, and each run must read exactly its window of source updates.
        schedule=CronDataIntervalTimetable(os.environ.get("NEURON_DAG_CADENCE") or spec.schedule, timezone=TIMEZONE),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["neuron", "ingest", f"system-{spec.system}", *community_tags(community)],
        default_args=default_args(timedelta(minutes=20)),
        doc_md=INGEST_DOC.format(
            name=spec.name,
            system=spec.system,
            title=spec.title,
            asset=asset.uri,
            feeds=", ".join(f"`{f}`" for f in feeds) or "none yet",
            community=f" ({community})" if community else "",
        ),
    )
    def ingest() -> None:
        @task
        def extract(data_interval_start: Any = None, data_interval_end: Any = None) -> str:
            from neuron.tasks import as_datetime, run_stage
            from pipeline import extract

            start, end = as_datetime(data_interval_start), as_datetime(data_interval_end)
            return run_stage(extract, spec.name, start, end, community=community)

        @task
        def validate(batch_id: str) -> str:
            from neuron.tasks import run_stage
            from pipeline import validate

            run_stage(validate, batch_id, community=community)
            return batch_id

        @task(pool=duckdb_pool(community), queue=duckdb_queue(), outlets=[asset])
        def load(batch_id: str, outlet_events: Any = None) -> list[str]:
            from neuron.tasks import run_stage
            from pipeline import load

            days = run_stage(load, batch_id, community=community)
            # The publish DAGs read which days changed from the Asset event, not from XCom.
            outlet_events[asset].extra = {"days": days, "batch_id": batch_id}
            return days

        # TaskFlow passes XComArgs between tasks; at run time each arrives as the value.
        load(validate(extract()))  # type: ignore[arg-type]

    built: DAG = ingest()
    return built


def publish_dag(feed: Feed, community: str | None = None) -> DAG:
    """The Airflow DAG that publishes `feed` whenever one of its sources is loaded."""
    assets = [staging_asset(source, community) for source in feed.sources if source in STREAMS]
    schedule: Any = CronDataIntervalTimetable(CADENCE_CRON[feed.cadence], timezone=TIMEZONE)
    for i, asset in enumerate(assets):
        # Any source loaded: its days are republished.
        schedule = asset if i == 0 else schedule | asset

    @dag(
        dag_id=publish_dag_id(feed.name, community),
        schedule=schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["neuron", "publish", feed.name.split(".")[0], *community_tags(community)],
        default_args=default_args(timedelta(minutes=30)),
        doc_md=PUBLISH_DOC.format(
            name=feed.name,
            title=f"{feed.title.en} ({feed.title.zh})",
            trigger=(
                "when any of its sources is loaded (Assets " + ", ".join(f"`{a.uri}`" for a in assets) + ")"
                if assets
                else f"on its {feed.cadence} cadence (its sources are written outside the ingest DAGs)"
            ),
            community=f" ({community})" if community else "",
        ),
    )
    def publish() -> None:
        @task(pool=duckdb_pool(community), queue=duckdb_queue())
        def build_marts(
            triggering_asset_events: Any = None,
            dag_run: Any = None,
            data_interval_start: Any = None,
            data_interval_end: Any = None,
        ) -> list[str] | None:
            from neuron.tasks import affected_days, as_datetime, interval_days, run_stage
            from pipeline import build

            run_stage(build, community=community)
            conf = getattr(dag_run, "conf", None)
            if not assets and not (conf and "days" in conf) and data_interval_start is not None:
                return interval_days(as_datetime(data_interval_start), as_datetime(data_interval_end), TIMEZONE)
            return affected_days(triggering_asset_events, conf)

        @task(pool=duckdb_pool(community), queue=duckdb_queue())
        def publish_feed(days: list[str] | None) -> int:
            from neuron.tasks import run_stage
            from pipeline import publish

            return len(run_stage(publish, days, [feed.name], community=community))

        publish_feed(build_marts())  # type: ignore[arg-type]

    built: DAG = publish()
    return built
