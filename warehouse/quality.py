"""Data quality per stream and per feed: the report `neuron quality` writes (JSON and a
self-contained HTML page for a community admin), and each feed's status for the API's catalog.

`quality_report` is the one computation of the day's status and counts: the console's
overview and quality pages, `neuron status` and `neuron quality` all show its numbers, and
the catalog's statuses come from the same rules over the same stated period.
The rules and the facts they judge are in `warehouse.quality_rules`.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import distinct, false, func, select
from sqlalchemy.orm import Session

from kernel.errors import ConfigError
from kernel.settings import Settings
from schemas.contract import load_contract
from schemas.feeds import load_feeds
from warehouse.control import session_scope
from warehouse.models import BatchQuality, ExpectationResult, LoadRecord, Partition, QuarantineCount
from warehouse.quality_rules import (
    RULES,
    STATUSES,
    duration_text,
    feed_status,
    granted_consumers,
    iso,
    period,
    published_feeds,
    seconds_since,
    stream_facts,
)

SCHEMA_VERSION = 1
CATALOG_MAX_AGE = timedelta(seconds=30)  # how long the API reuses a computed status


def feed_quality(settings: Settings, feed_name: str, now: datetime | None = None) -> dict[str, Any]:
    """One feed's quality status and freshness (for the catalog): status, issues, watermark, freshness."""
    now = now or datetime.now(UTC)
    feed = load_feeds()[feed_name]
    with session_scope(settings.control_url) as session:
        facts = stream_facts(session, settings, now, feed.sources)
        published = feed_name in published_feeds(session)
    return {
        **feed_status(feed, facts, published, feed_name in granted_consumers(settings), now),
        "checked_at": iso(now),
        "period": period(settings.timezone, now).label,
    }


class _Snapshots:
    """Every feed's status, per control database, reused for `CATALOG_MAX_AGE`. When it expires,
    one thread recomputes it while the others keep answering from the previous one, so catalog
    requests never queue behind the queries (only a hub's very first request waits for them)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.taken: dict[str, tuple[datetime, dict[str, dict[str, Any]]]] = {}
        self.refreshing: set[str] = set()

    def get(self, settings: Settings, now: datetime) -> tuple[datetime, dict[str, dict[str, Any]]]:
        url = settings.control_url
        cached = self.taken.get(url)  # the hot path takes no lock: a dict read is atomic
        if cached is not None and cached[0] <= now < cached[0] + CATALOG_MAX_AGE:
            return cached
        with self.lock:
            cached = self.taken.get(url)
            if cached is not None and (cached[0] <= now < cached[0] + CATALOG_MAX_AGE or url in self.refreshing):
                return cached
            self.refreshing.add(url)
        try:
            fresh = (now, _all_feed_statuses(settings, now))
            with self.lock:
                self.taken[url] = fresh
            return fresh
        finally:
            with self.lock:
                self.refreshing.discard(url)


_SNAPSHOTS = _Snapshots()


def cached_feed_quality(settings: Settings, feed_name: str, now: datetime) -> dict[str, Any]:
    """`feed_quality` for the API's hot catalog: every feed's status is computed at most once per
    `CATALOG_MAX_AGE` (a handful of queries), the freshness is always as of `now`."""
    checked_at, statuses = _SNAPSHOTS.get(settings, now)
    if feed_name not in statuses:  # a feed the snapshot does not know: ask for it alone
        return feed_quality(settings, feed_name, now)
    status = statuses[feed_name]
    watermark = datetime.fromisoformat(status["watermark"]) if status["watermark"] else None
    return {
        **status,
        "freshness_seconds": seconds_since(now, watermark),
        "checked_at": iso(checked_at),
        "period": period(settings.timezone, checked_at).label,
    }


def _all_feed_statuses(settings: Settings, now: datetime) -> dict[str, dict[str, Any]]:
    feeds = load_feeds()
    streams = sorted({s for f in feeds.values() for s in f.sources})
    with session_scope(settings.control_url) as session:
        facts = stream_facts(session, settings, now, streams)
        published = published_feeds(session)
    granted = granted_consumers(settings)
    return {name: feed_status(f, facts, name in published, name in granted, now) for name, f in feeds.items()}


def _title(stream: str) -> dict[str, str]:
    try:
        return load_contract(stream).title.model_dump()
    except ConfigError:
        return {"zh": stream, "en": stream}


def _reported_streams(session: Session, settings: Settings) -> list[str]:
    """Every stream with a batch for the hub's community, and every source of a feed."""
    seen = set(
        session.scalars(select(LoadRecord.stream).distinct().where(LoadRecord.community_id == settings.community_id))
    )
    return sorted(seen | {s for f in load_feeds().values() for s in f.sources})


def _period_details(
    session: Session, settings: Settings, now: datetime
) -> tuple[dict[str, dict[str, int]], dict[str, list[dict[str, Any]]], dict[str, int]]:
    """Quarantined rows by reason, failed expectations and expectations evaluated, per stream."""
    q = BatchQuality
    day = period(settings.timezone, now)
    in_period = (q.community_id == settings.community_id, q.window_end > day.start, q.window_end <= now)
    reasons: dict[str, dict[str, int]] = {}
    by_reason = select(q.stream, QuarantineCount.reason, func.sum(QuarantineCount.rows)).join(
        q, q.batch_id == QuarantineCount.batch_id
    )
    for stream, reason, rows in session.execute(by_reason.where(*in_period).group_by(q.stream, QuarantineCount.reason)):
        reasons.setdefault(stream, {})[reason] = int(rows)
    e = ExpectationResult
    failed: dict[str, list[dict[str, Any]]] = {}
    failures = (
        select(q.stream, e.expectation, e.column, func.count(), func.sum(e.unexpected))
        .join(q, q.batch_id == e.batch_id)
        .where(*in_period, e.success == false())
        .group_by(q.stream, e.expectation, e.column)
        .order_by(q.stream, e.column, e.expectation)
    )
    for stream, expectation, column, batches, unexpected in session.execute(failures):
        failed.setdefault(stream, []).append(
            {"expectation": expectation, "column": column, "batches": int(batches), "unexpected": int(unexpected)}
        )
    # The suite's distinct expectations that ran in the period (a failed one counts once, however often).
    evaluated: dict[str, int] = {}
    suite = select(q.stream, e.expectation, e.column).join(q, q.batch_id == e.batch_id).where(*in_period).distinct()
    for stream, _, _ in session.execute(suite):
        evaluated[stream] = evaluated.get(stream, 0) + 1
    return reasons, failed, evaluated


def _consumers(session: Session) -> dict[str, dict[str, dict[str, Any]]]:
    """Per feed and consumer: partitions, versions, the newest version and when it was published."""
    p = Partition
    rows = select(
        p.feed, p.consumer, func.count(distinct(p.partition_key)), func.count(), func.max(p.published_at)
    ).group_by(p.feed, p.consumer)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for feed, consumer, partitions, versions, last in session.execute(rows):
        # SQLite returns max() of a timestamp column as text: read it back as an instant.
        last_at = datetime.fromisoformat(last) if isinstance(last, str) else last
        if last_at is not None and last_at.tzinfo is None:
            last_at = last_at.replace(tzinfo=UTC)
        out.setdefault(feed, {})[consumer] = {
            "consumer": consumer,
            "partitions": int(partitions),
            "versions": int(versions),
            "last_published": iso(last_at),
        }
    return out


def quality_report(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """The data-quality report of the hub's community: per stream and per feed (see the module's rules)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    feeds = load_feeds()
    with session_scope(settings.control_url) as session:
        streams = _reported_streams(session, settings)
        facts = stream_facts(session, settings, now, streams)
        reasons, failed, evaluated = _period_details(session, settings, now)
        consumers = _consumers(session)
    granted = granted_consumers(settings)
    stream_rows: list[dict[str, Any]] = []
    for name in streams:
        f = facts[name]
        stream_rows.append(
            {
                "stream": name,
                "title": _title(name),
                "status": f.status,
                "issues": f.issues,
                "batches": f.batches,
                "batches_rejected": f.batches_rejected,
                "rows_in": f.rows_in,
                "rows_loaded": f.rows_loaded,
                "rows_quarantined": f.rows_quarantined,
                "duplicates_dropped": f.duplicates_dropped,
                "quarantined_by_reason": dict(sorted(reasons.get(name, {}).items())),
                "expectations_evaluated": evaluated.get(name, 0),
                "expectations_failed": failed.get(name, []),
                "last_batch": f.last_batch,
                "newest_loaded_window_end": iso(f.newest_loaded_end),
                "window_seconds": int(f.window.total_seconds()),
                "freshness_seconds": seconds_since(now, f.newest_loaded_end),
            }
        )
    feed_rows: list[dict[str, Any]] = []
    for name, feed in feeds.items():
        status = feed_status(feed, facts, name in consumers, name in granted, now)
        mine = consumers.get(name, {})
        names = sorted(set(granted.get(name, [])) | set(mine))
        empty = {"partitions": 0, "versions": 0, "last_published": None}
        published = [at for c in mine.values() if (at := c["last_published"])]
        feed_rows.append(
            {
                **status,
                "title": feed.title.model_dump(),
                "cadence": feed.cadence,
                "sources": [{"stream": s, "status": facts[s].status} for s in feed.sources],
                "last_published": max(published, default=None),
                "consumers": [mine.get(c, {"consumer": c, **empty}) for c in names],
            }
        )
    counts = {kind: {s: 0 for s in STATUSES} for kind in ("streams", "feeds")}
    for kind, rows in (("streams", stream_rows), ("feeds", feed_rows)):
        for row in rows:
            counts[kind][row["status"]] += 1
    # The day's rows, summed from the same per-stream rows every view shows (issue 19).
    totals = {k: sum(int(row[k]) for row in stream_rows) for k in ("rows_in", "rows_loaded", "rows_quarantined")}
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": iso(now),
        "community": {"id": settings.community_id, "name": settings.community_name},
        "period": period(settings.timezone, now).as_json(),
        "rules": RULES,
        "summary": {**counts, "totals": totals},
        "streams": stream_rows,
        "feeds": feed_rows,
    }


def write_report(settings: Settings, out_dir: Path, now: datetime | None = None) -> list[Path]:
    """Write the report as `quality.json` and `quality.html` (self-contained) under `out_dir`."""
    report = quality_report(settings, now)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "quality.json", out_dir / "quality.html"
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    html_path.write_text(render_html(report, settings.timezone), encoding="utf-8")
    return [json_path, html_path]


TEMPLATES = Path(__file__).resolve().parent / "templates"
# The reasons and rules of `schemas.validate`, in Chinese for the admin's page (the JSON keeps
# the reasons as the quarantine table has them, so they can be looked up there).
RULE_ZH = {
    "is missing": "缺失",
    "does not match the contract's pattern": "不符合契约规定的格式",
    "is not one of the allowed values": "不是允许的取值之一",
    "is out of range": "超出允许范围",
    "is not unique": "不唯一",
}
TYPE_ZH = {"timestamp": "时间", "int64": "整数", "float64": "数值", "bool": "是/否值", "string": "文本"}


def reason_zh(reason: str) -> str:
    """A quarantine reason ("plate_no: is missing") in Chinese; unknown wording is kept as it is."""
    name, _, words = reason.partition(": ")
    if name == "schema drift":
        return "数据源结构变化：" + words.replace("unexpected field(s)", "未声明的字段")
    if words.startswith("not a valid "):
        kind = words.removeprefix("not a valid ")
        return f"{name}：不是有效的{TYPE_ZH.get(kind, kind)}"
    return f"{name}：{RULE_ZH[words]}" if words in RULE_ZH else reason


def _rule_words(expectation: str) -> tuple[str, str]:
    from schemas.validate import EXPECTATION_WORDS

    en = EXPECTATION_WORDS.get(expectation, expectation)
    return en, RULE_ZH.get(en, en)


def render_html(report: dict[str, Any], timezone: str) -> str:
    """The report as one HTML page for a community admin: no script, no external file."""
    # Jinja2 comes with Airflow; imported here so the pipeline and the API never pay for it.
    from zoneinfo import ZoneInfo

    from jinja2 import Environment, FileSystemLoader, select_autoescape

    zone = ZoneInfo(timezone)

    def local(value: str | None) -> str:
        return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else "—"

    def age(seconds: int | None) -> str:
        if seconds is None:
            return "—"
        en, zh = duration_text(seconds)
        return f"{zh} / {en}"

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters.update(local=local, age=age, reason_zh=reason_zh, rule_words=_rule_words)
    return env.get_template("quality.html").render(report=report, timezone=timezone)
