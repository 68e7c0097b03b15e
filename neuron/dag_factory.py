"""The hub's DAG suite, generated from its registries: one `hub` DAG per community (the
streams of connectors/registry.py, the feeds of schemas/feeds/*.yaml).

Why one DAG per community and not one per stream and feed: through Airflow every task is a
fresh process that imports the task SDK and the hub's stack before its work (~3–5 s here),
which dwarfs an hourly window's own work (bench scheduler_day). So the scheduler's unit is
the community-window: each hourly run has two tasks,

- `ingest`: every stream due in the window (its own cadence fires in it), in stream order,
  extract → validate → load in this one process (neuron/window.py); a failing stream is
  recorded and the others carry on; the task then fails, retried only if a failure was
  retriable (kernel/errors.py);
- `publish` (runs once `ingest` is done, failed or not): rebuilds the marts once and
  publishes the hourly feeds whose sources changed, for the local days they touched, and
  the daily and monthly feeds when their cadence fires in the window; it then records Airflow Asset events, through
  aliases, for each stream loaded (`neuron://staging/<stream>`, extra `days`) and each
  feed published (`neuron://feeds/<feed>`), so Asset-scheduled consumers keep working.

Both tasks take the community's one-slot `duckdb_writer` pool and runs are one at a time
(max_active_runs=1), so each community has one DuckDB writer. XCom carries the streams'
outcomes (names, days, counts) only.

What the suite contains is read from the environment at parse time (never Airflow
Connections or Variables): NEURON_DAG_STREAMS (comma list, default every stream),
NEURON_DAG_CADENCE (a cron that replaces the window's and every stream's cadence, e.g.
`0 0 * * *` for daily windows), NEURON_DAG_COMMUNITIES (comma list: one `hub` DAG per
community of a subdistrict, each community's hub under $NEURON_HOME/communities/<id>),
NEURON_DAG_START and NEURON_DAG_END (ISO instants: catch up exactly the windows between
them, e.g. a benchmark's day) and NEURON_DAG_DUCKDB_QUEUE (the Celery queue of the tasks).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from connectors.registry import STREAMS, StreamSpec
from schemas.feeds import Feed, load_feeds

DUCKDB_POOL = "duckdb_writer"
TIMEZONE = "Asia/Shanghai"
OWNER = "neuron-hub"
START = datetime(2026, 1, 1)


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
    """The streams the hub DAGs ingest (NEURON_DAG_STREAMS, default all), in stream order."""
    chosen = _env_list("NEURON_DAG_STREAMS")
    unknown = set(chosen) - set(STREAMS)
    if unknown:
        raise ValueError(f"NEURON_DAG_STREAMS names unknown stream(s): {', '.join(sorted(unknown))}")
    return [STREAMS[name] for name in chosen] if chosen else list(STREAMS.values())


def suite_feeds() -> list[Feed]:
    """The feeds the hub DAGs publish: every feed with a source in the suite, and every
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


def feed_asset(feed: str, community: str | None = None) -> Asset:
    """The Asset a feed's publish updates (one per community in a subdistrict suite)."""
    uri = f"neuron://feeds/{feed}" + (f"/{community}" if community else "")
    return Asset(uri=uri, name=uri)


def staging_alias(community: str | None = None) -> AssetAlias:
    """Through this alias a window records events for the stream Assets it loaded, and
    only those (a plain outlet would record every stream's Asset on every window)."""
    return AssetAlias(name="neuron-staging" + dag_suffix(community))


def feeds_alias(community: str | None = None) -> AssetAlias:
    """Through this alias a window records events for the feed Assets it published."""
    return AssetAlias(name="neuron-feeds" + dag_suffix(community))


def hub_dag_id(community: str | None = None) -> str:
    """`hub` for one hub; `hub__music_square` for a community of a subdistrict suite."""
    return "hub" + dag_suffix(community)


def window_cron() -> str:
    """The windows' cadence: hourly (the finest stream cadence that is not sub-hourly),
    or NEURON_DAG_CADENCE."""
    return os.environ.get("NEURON_DAG_CADENCE") or "0 * * * *"


def stream_cadences() -> dict[str, str]:
    """{stream: cron} of the suite, in stream order (NEURON_DAG_CADENCE replaces them all)."""
    override = os.environ.get("NEURON_DAG_CADENCE")
    return {spec.name: override or spec.schedule for spec in suite_streams()}


def _catch_up() -> tuple[datetime, datetime | None, bool]:
    """start_date, end_date, catchup: NEURON_DAG_START/END catch up exactly their windows."""
    start, end = os.environ.get("NEURON_DAG_START"), os.environ.get("NEURON_DAG_END")
    if not start:
        return START, None, False
    return datetime.fromisoformat(start), datetime.fromisoformat(end) if end else None, True


HUB_DOC = """
### hub{community} — one run per window: every due stream, then the changed feeds

`ingest` runs, in one process, every stream due in the run's data interval (each on its own
cadence: {cadences}): it reads what the source updated, lands it encrypted in the raw
vault, validates it against the stream's contract (bad rows to quarantine with a reason),
pseudonymises direct identifiers and loads the batch into DuckDB staging (replacing an
earlier run of the same window). A failing stream is reported and the others load.

`publish` then rebuilds the marts and publishes, to every consumer whose policy grants them,
the hourly feeds whose sources changed (for the local days they touched) and the daily and
monthly feeds when their cadence fires in the window (for the days since it last fired:
once per period, as republishing an aggregate hourly would move its counts by a few
between versions). A feed that fails is reported and the others publish. It records Asset events for each stream loaded
(`{staging}`, extra `days`) and each feed published (`{feeds}`).

Retries: a window is retried (every due stream again: loads replace, publishing unchanged
rows writes no new version) only when a stream failed retriably (source down, timeout);
credentials refused, a batch over its failure budget or a broken contract fail at once.
Manual runs take `conf`: `streams` (only these), `publish` (false: ingest only), `feeds`
and `days` (publish these feeds for these days). Backfills: `airflow backfill create
--dag-id hub{suffix} ...` re-runs the windows, idempotently.
"""


def hub_dag(community: str | None = None) -> DAG:
    """The Airflow DAG that runs one community's windows: due streams, then changed feeds."""
    cadences = stream_cadences()
    feeds = suite_feeds()
    ingested = set(cadences)
    staging, published = staging_alias(community), feeds_alias(community)
    start_date, end_date, catchup = _catch_up()

    @dag(
        dag_id=hub_dag_id(community),
        # An explicit data-interval timetable: Airflow 3's cron default has zero-width
        # intervals, and each run must read exactly its window of source updates.
        schedule=CronDataIntervalTimetable(window_cron(), timezone=TIMEZONE),
        start_date=start_date,
        end_date=end_date,
        catchup=catchup,
        max_active_runs=1,  # windows in order, and one DuckDB writer per community
        tags=["neuron", "ingest", "publish", *community_tags(community)],
        default_args=default_args(timedelta(minutes=60)),
        doc_md=HUB_DOC.format(
            community=f" ({community})" if community else "",
            suffix=dag_suffix(community),
            cadences=", ".join(f"`{s}` `{c}`" for s, c in cadences.items()),
            staging=staging_asset("<stream>", community).uri,
            feeds=feed_asset("<feed>", community).uri,
        ),
    )
    def hub() -> None:
        @task(pool=duckdb_pool(community), queue=duckdb_queue())
        def ingest(
            ti: Any = None, dag_run: Any = None, data_interval_start: Any = None, data_interval_end: Any = None
        ) -> None:
            from neuron.tasks import as_datetime, fatal_fails_fast, run_stage
            from neuron.window import as_dicts, due_streams, ingest_due, raise_for_failures

            conf = getattr(dag_run, "conf", None) or {}
            start, end = as_datetime(data_interval_start), as_datetime(data_interval_end)
            chosen = {s: c for s, c in cadences.items() if conf.get("streams") is None or s in conf["streams"]}
            due = due_streams(chosen, start, end, TIMEZONE)
            results = run_stage(ingest_due, due, community=community)
            outcomes = as_dicts(results)
            # Pushed before failing: `publish` still publishes what the other streams loaded.
            ti.xcom_push(key="outcomes", value=outcomes)
            with fatal_fails_fast():
                raise_for_failures(results)

        @task(
            pool=duckdb_pool(community),
            queue=duckdb_queue(),
            outlets=[staging, published],
            trigger_rule="all_done",  # the streams that loaded are published even if another failed
        )
        def publish(
            ti: Any = None,
            dag_run: Any = None,
            outlet_events: Any = None,
            data_interval_start: Any = None,
            data_interval_end: Any = None,
        ) -> dict[str, list[str]]:
            from neuron.tasks import as_datetime, fatal_fails_fast, run_stage
            from neuron.window import changed_days, feeds_to_publish, publish_feeds, raise_for_feed_failures

            conf = getattr(dag_run, "conf", None) or {}
            start, end = as_datetime(data_interval_start), as_datetime(data_interval_end)
            changed = changed_days(ti.xcom_pull(task_ids="ingest", key="outcomes") or [])
            if conf.get("days") is not None:  # a manual run names its days: publish those
                wanted = set(conf.get("feeds") or [f.name for f in feeds])
                feed_days = {f.name: sorted(conf["days"]) for f in feeds if f.name in wanted and conf["days"]}
            elif conf.get("publish", True):
                every_window = bool(os.environ.get("NEURON_DAG_CADENCE"))
                feed_days = feeds_to_publish(feeds, changed, ingested, start, end, TIMEZONE, every_window)
            else:
                feed_days = {}
            results = run_stage(publish_feeds, feed_days, community=community)
            for stream, days in changed.items():
                outlet_events[staging].add(staging_asset(stream, community), extra={"days": days})
            for outcome in results:
                if outcome.error is None:
                    extra = {"days": outcome.days, "versions": outcome.versions}
                    outlet_events[published].add(feed_asset(outcome.feed, community), extra=extra)
            # A failed feed fails the task, and with it the Asset events above: retried,
            # the window publishes again (unchanged rows: no new version) and records them.
            with fatal_fails_fast():
                raise_for_feed_failures(results)
            return feed_days

        ingest() >> publish()

    built: DAG = hub()
    return built
