"""One community-window of the hub, in one process: every due stream's stages in stream
order, then the feeds whose sources changed (what the hub DAG's two tasks call).

Why one process per window and not one per stream-stage: through Airflow each task is a
fresh process that imports the task SDK and the hub's stack (~3–5 s here) before its work,
which for an hourly 100-row window is most of the cost (bench scheduler_day). So the
scheduler's unit is the community-window; streams stay isolated inside it: one stream's
failure is recorded and reported, the others load, and the window then fails (retried
only if a failure was retriable, kernel/errors.py).

A stream is due in the window (start, end] when its own cadence (its contract's `source`
schedule, in the hub's timezone) fires in it; it then reads its own interval, from the
fire before the first to the last (an hourly stream in an hourly window: the window; a
daily 06:00 stream: the day up to the 06:00 window's end; a 15-minute stream: the window,
as one batch). Batch ids are derived from that interval, so a re-run replaces, never adds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from kernel.errors import FatalError, RetriableError

if TYPE_CHECKING:
    from kernel.settings import Settings
    from schemas.feeds import Feed

log = logging.getLogger(__name__)

# When a feed whose sources are not ingest streams (the relay writes them) is republished.
CADENCE_CRON = {"realtime": "*/15 * * * *", "hourly": "5 * * * *", "daily": "30 0 * * *", "monthly": "0 1 1 * *"}


@dataclass(frozen=True)
class DueStream:
    """A stream due in a window, and the interval of source updates its batch reads."""

    stream: str
    start: datetime
    end: datetime


@dataclass
class StreamOutcome:
    """What became of one due stream: loaded (with the local days it touched) or failed."""

    stream: str
    start: str
    end: str
    loaded: bool
    days: list[str] = field(default_factory=list)
    rows_in: int = 0
    rows_quarantined: int = 0
    error: str | None = None  # the error's class and message (never a data value: kernel/errors.py)
    retriable: bool = False


def fires_between(cron: str, start: datetime, end: datetime, timezone: str) -> list[datetime]:
    """The instants in (start, end] at which `cron` (read in `timezone`) fires."""
    from croniter import croniter

    tz = ZoneInfo(timezone)
    it = croniter(cron, start.astimezone(tz))
    out: list[datetime] = []
    while (nxt := it.get_next(datetime)) <= end:
        out.append(nxt.astimezone(UTC))
    return out


def due_streams(cadences: Mapping[str, str], start: datetime, end: datetime, timezone: str) -> list[DueStream]:
    """The streams (in the given order) whose cadence fires in the window (start, end]."""
    from croniter import croniter

    due = []
    for stream, cron in cadences.items():
        fires = fires_between(cron, start, end, timezone)
        if fires:
            first = croniter(cron, fires[0].astimezone(ZoneInfo(timezone))).get_prev(datetime)
            due.append(DueStream(stream, first.astimezone(UTC), fires[-1]))
    return due


def ingest_due(settings: Settings, due: Iterable[DueStream]) -> list[StreamOutcome]:
    """Extract, validate and load each due stream in order; a stream that fails is recorded
    (and logged in one line) and the next one runs: one broken source never holds back
    another's window."""
    from pipeline import extract, load, validate

    outcomes = []
    for item in due:
        outcome = StreamOutcome(item.stream, item.start.isoformat(), item.end.isoformat(), loaded=False)
        try:
            batch_id = extract(settings, item.stream, item.start, item.end)
            summary = validate(settings, batch_id)
            outcome.rows_in, outcome.rows_quarantined = summary["rows_in"], summary["rows_quarantined"]
            outcome.days = load(settings, batch_id)
            outcome.loaded = True
        except Exception as exc:  # isolation: any failure of one stream is that stream's
            outcome.error = f"{type(exc).__name__}: {exc}"
            outcome.retriable = isinstance(exc, RetriableError)
            log.error("%s [%s, %s): failed: %s", item.stream, outcome.start, outcome.end, outcome.error)
        outcomes.append(outcome)
    return outcomes


class WindowFailed(FatalError):
    """Some due streams of a window failed, none of them retriably: retrying will not help."""


class WindowRetriable(RetriableError):
    """Some due stream of a window failed retriably: the window is tried again (idempotent)."""


def raise_for_failures(outcomes: Sequence[StreamOutcome]) -> None:
    """One line naming every failed stream; retriable if any failure is (a retry re-runs the
    window, which replaces what the earlier try loaded)."""
    failed = [(o.stream, o.error, o.retriable) for o in outcomes if not o.loaded]
    _raise_for(failed, len(outcomes), "due streams")


def _raise_for(failed: Sequence[tuple[str, str | None, bool]], total: int, what: str) -> None:
    """Raise one error naming every (name, error, retriable) failed: retriable if any is."""
    if not failed:
        return
    names = ", ".join(f"{name} ({(error or '').split(':')[0]})" for name, error, _ in failed)
    message = f"{len(failed)} of {total} {what} failed: {names}"
    if any(retriable for _, _, retriable in failed):
        raise WindowRetriable(message)
    raise WindowFailed(message)


def as_dicts(outcomes: Sequence[StreamOutcome]) -> list[dict[str, Any]]:
    """Outcomes as XCom-able dicts."""
    return [asdict(o) for o in outcomes]


def changed_days(outcomes: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """{stream: local days it touched} of the streams a window loaded."""
    changed: dict[str, set[str]] = {}
    for o in outcomes:
        if o.get("loaded"):
            changed.setdefault(str(o["stream"]), set()).update(str(d) for d in o.get("days") or [])
    return {stream: sorted(days) for stream, days in changed.items()}


def feeds_to_publish(
    feeds: Iterable[Feed],
    changed: Mapping[str, list[str]],
    ingested: set[str],
    start: datetime,
    end: datetime,
    timezone: str,
    every_window: bool = False,
) -> dict[str, list[str]]:
    """{feed: days} to publish after a window (start, end].

    An hourly or realtime feed built from ingest streams: when its sources changed, for the
    days they touched. A daily or monthly feed (or one the relay writes): when its cadence
    fires in the window, for the days since the previous fire — once per period, because
    republishing a day's or a month's aggregate every hour would hand consumers versions
    that differ by a few counts (the publisher refuses those: they disclose small cells).
    `every_window` (coarse windows, NEURON_DAG_CADENCE): every feed on change.
    """
    from croniter import croniter

    from neuron.tasks import interval_days

    out: dict[str, list[str]] = {}
    for feed in feeds:
        sources = set(feed.sources)
        if sources & ingested and (every_window or feed.cadence in ("hourly", "realtime")):
            days = sorted({d for s in sources & set(changed) for d in changed[s]})
            if days:
                out[feed.name] = days
            continue
        cron = CADENCE_CRON[feed.cadence]
        fires = fires_between(cron, start, end, timezone)
        if fires:
            previous = croniter(cron, fires[0].astimezone(ZoneInfo(timezone))).get_prev(datetime)
            out[feed.name] = interval_days(previous.astimezone(UTC), end, timezone)
    return out


@dataclass
class FeedOutcome:
    """What became of one feed's publish in a window: versions written, or the error."""

    feed: str
    days: list[str]
    versions: int = 0
    error: str | None = None
    retriable: bool = False


def publish_feeds(settings: Settings, feed_days: Mapping[str, list[str]]) -> list[FeedOutcome]:
    """Rebuild the marts once, then publish each feed for its days; a feed that fails (a
    partition withheld, say) is recorded and logged in one line, and the others publish."""
    from pipeline import build, hold_warehouse, publish

    if not feed_days:
        return []
    outcomes = []
    # DuckDB opened once for the marts and every feed (opening and closing cost ~30 ms of CPU
    # each time: bench window_costs), not once per feed.
    with hold_warehouse(settings):
        build(settings)
        for feed, days in sorted(feed_days.items()):
            outcome = FeedOutcome(feed, list(days))
            try:
                outcome.versions = len(publish(settings, list(days), [feed]))
            except Exception as exc:  # isolation: one feed's failure is that feed's
                outcome.error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                outcome.retriable = isinstance(exc, RetriableError)
                log.error("publish %s: failed: %s", feed, outcome.error)
            outcomes.append(outcome)
    return outcomes


def raise_for_feed_failures(outcomes: Sequence[FeedOutcome]) -> None:
    """One line naming every feed that failed; retriable if any failure is."""
    failed = [(o.feed, o.error, o.retriable) for o in outcomes if o.error]
    _raise_for(failed, len(outcomes), "feeds")
