"""Data quality per stream and per feed, from the control database only (never the live DuckDB
file, so the API can ask too): what validation kept for every batch (`warehouse.quality_models`),
the load ledger and the published partitions.

Per stream, over the batches whose window ended in the report period (the 24 hours before
`now`): rows in, loaded, quarantined by reason, expectations failed; and, whatever the period,
the last batch and the freshness (now − the end of the newest loaded window).

Status rules (the report prints them; `RULES` below). The stream's *window* is the length of
its newest loaded window (an hourly stream: 1 h), so the rules follow each stream's cadence.
- fail: never loaded; the newest batch was rejected (over its failure budget, or drift under a
  frozen contract: nothing of it was loaded); or no new data for more than 4 windows.
- warn: no new data for more than 2 windows; a batch of the period was rejected; more than half
  the failure budget of the period's rows quarantined; schema drift in the period.
- ok: none of these.
A feed is as bad as its worst source, and warns when a policy grants it but nothing has been
published yet. Its freshness is now − its watermark (the least of its sources' newest loaded
window ends, as in `publisher.feed_watermark`, for the hub's community).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, distinct, false, func, select
from sqlalchemy.orm import Session

from neuron.errors import ConfigError
from neuron.settings import Settings
from privacy.policy import load_policies
from schemas.contract import load_contract
from schemas.feeds import Feed, load_feeds
from warehouse.control import LoadRecord, Partition, session_scope
from warehouse.quality_models import BatchQuality, ExpectationResult, QuarantineCount

SCHEMA_VERSION = 1
REPORT_PERIOD = timedelta(hours=24)
LATE_WINDOWS = 2  # warn past this many windows without new data
STALE_WINDOWS = 4  # fail past this many
QUARANTINE_WARN = 0.5  # warn when the period's quarantined share passes this part of the failure budget
CATALOG_MAX_AGE = timedelta(seconds=30)  # how long the API reuses a computed status
STATUSES = ("ok", "warn", "fail")
RULES = {
    "period_hours": REPORT_PERIOD / timedelta(hours=1),
    "late_windows": LATE_WINDOWS,
    "stale_windows": STALE_WINDOWS,
    "quarantine_warn_share_of_budget": QUARANTINE_WARN,
}
# (status, English, Chinese) per issue; the fields in braces are filled in per stream or feed.
ISSUES = {
    "never_loaded": ("fail", "no window has been loaded yet", "尚未成功加载任何数据"),
    "last_batch_rejected": (
        "fail",
        "the newest batch was rejected (too many bad rows, or the source changed its fields): nothing of it loaded",
        "最新批次被拒收（错误记录过多或数据源字段变化），未加载",
    ),
    "stale": (
        "fail",
        "no new data for {age} (fails after {limit})",
        "已 {age_zh} 无新数据（超过 {limit_zh} 即为故障）",
    ),
    "late": ("warn", "no new data for {age} (warns after {limit})", "已 {age_zh} 无新数据（超过 {limit_zh} 即提示）"),
    "rejected_in_period": ("warn", "{n} batch(es) rejected in the period", "本期有 {n} 个批次被拒收"),
    "quarantine_share": (
        "warn",
        "{share} of the period's rows quarantined (warns above {limit})",
        "本期 {share} 的记录被隔离（超过 {limit} 即提示）",
    ),
    "schema_drift": ("warn", "the source sent fields its contract does not declare", "数据源发送了契约未声明的字段"),
    "not_published": ("warn", "granted to a consumer but not published yet", "已授权但尚未发布"),
    "source": ("", "source {stream}: {detail}", "数据源 {stream}：{detail_zh}"),
}


def _issue(code: str, status: str | None = None, **values: Any) -> dict[str, str]:
    default, en, zh = ISSUES[code]
    return {"code": code, "status": status or default, "en": en.format(**values), "zh": zh.format(**values)}


def _worst(statuses: list[str]) -> str:
    return max(statuses, key=STATUSES.index, default="ok")


def duration_text(seconds: float) -> tuple[str, str]:
    """A duration as an admin reads it, in English and Chinese: "1 d 3 h", "1天3小时"."""
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [(days, "d", "天"), (hours, "h", "小时"), (mins, "min", "分钟")]
    shown = [(n, en, zh) for n, en, zh in parts if n][:2] or [(0, "min", "分钟")]
    return " ".join(f"{n} {en}" for n, en, _ in shown), "".join(f"{n}{zh}" for n, _, zh in shown)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _seconds(now: datetime, since: datetime | None) -> int | None:
    return None if since is None else max(0, int((now - since).total_seconds()))


@dataclass
class StreamFacts:
    """What the control database says about one stream (for the hub's community)."""

    stream: str
    batches: int = 0
    batches_rejected: int = 0
    batches_with_drift: int = 0
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    duplicates_dropped: int = 0
    newest_loaded_end: datetime | None = None
    window: timedelta = timedelta(hours=1)
    last_batch: dict[str, Any] | None = None
    issues: list[dict[str, str]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return _worst([i["status"] for i in self.issues])


def _failure_budget(settings: Settings, stream: str) -> float:
    try:
        budget = load_contract(stream).failure_budget
    except ConfigError:  # a stream whose contract has gone: the hub's default
        budget = None
    return settings.failure_budget if budget is None else budget


def _stream_facts(session: Session, settings: Settings, now: datetime, streams: list[str]) -> dict[str, StreamFacts]:
    """Period totals, the newest loaded window and the last batch of each stream: four queries."""
    community = settings.community_id
    facts = {s: StreamFacts(s) for s in streams}
    q = BatchQuality
    in_period = (q.community_id == community, q.window_end > now - REPORT_PERIOD, q.window_end <= now)
    totals = select(
        q.stream,
        func.count(),
        func.sum(case((q.rejected.is_(True), 1), else_=0)),
        func.sum(case((q.schema_drift.is_not(None), 1), else_=0)),
        func.sum(q.rows_in),
        func.sum(q.rows_loaded),
        func.sum(q.rows_quarantined),
        func.sum(q.duplicates_dropped),
    )
    for stream, *numbers in session.execute(totals.where(*in_period, q.stream.in_(streams)).group_by(q.stream)):
        f = facts[stream]
        (f.batches, f.batches_rejected, f.batches_with_drift, f.rows_in, f.rows_loaded, f.rows_quarantined) = map(
            int, numbers[:6]
        )
        f.duplicates_dropped = int(numbers[6])

    loaded = (LoadRecord.community_id == community, LoadRecord.status == "loaded", LoadRecord.stream.in_(streams))
    newest = (
        select(LoadRecord.stream, func.max(LoadRecord.window_end).label("end"))
        .where(*loaded)
        .group_by(LoadRecord.stream)
        .subquery()
    )
    windows = select(LoadRecord.stream, LoadRecord.window_start, LoadRecord.window_end).join(
        newest, and_(LoadRecord.stream == newest.c.stream, LoadRecord.window_end == newest.c.end)
    )
    for stream, start, end in session.execute(windows.where(*loaded).order_by(LoadRecord.window_start.desc())):
        # Windows ending together (a manual day run over hourly ones): the shortest sets the pace.
        facts[stream].newest_loaded_end, facts[stream].window = end, max(end - start, timedelta(hours=1))

    last = (
        select(q.stream, func.max(q.window_end).label("end"))
        .where(q.community_id == community, q.stream.in_(streams))
        .group_by(q.stream)
        .subquery()
    )
    rows = select(q, LoadRecord.status).join(last, and_(q.stream == last.c.stream, q.window_end == last.c.end))
    rows = rows.outerjoin(LoadRecord, LoadRecord.batch_id == q.batch_id).where(q.community_id == community)
    for batch, status in session.execute(rows.order_by(q.validated_at)):
        facts[batch.stream].last_batch = {
            "batch_id": batch.batch_id,
            "window_start": _iso(batch.window_start),
            "window_end": _iso(batch.window_end),
            "validated_at": _iso(batch.validated_at),
            "status": status or "unknown",
            "rows_in": batch.rows_in,
            "rows_loaded": batch.rows_loaded,
            "rows_quarantined": batch.rows_quarantined,
            "gx_success": batch.gx_success,
            "rejected": batch.rejected,
        }
    for f in facts.values():
        f.issues = _stream_issues(settings, f, now)
    return facts


def _stream_issues(settings: Settings, f: StreamFacts, now: datetime) -> list[dict[str, str]]:
    issues = []
    if f.newest_loaded_end is None:
        issues.append(_issue("never_loaded"))
    else:
        age = now - f.newest_loaded_end
        for code, windows in (("stale", STALE_WINDOWS), ("late", LATE_WINDOWS)):
            if age > windows * f.window:
                (age_en, age_zh), (lim_en, lim_zh) = (
                    duration_text(age.total_seconds()),
                    duration_text((windows * f.window).total_seconds()),
                )
                issues.append(_issue(code, age=age_en, age_zh=age_zh, limit=lim_en, limit_zh=lim_zh))
                break
    if f.last_batch and f.last_batch["rejected"]:
        issues.append(_issue("last_batch_rejected"))
    elif f.batches_rejected:
        issues.append(_issue("rejected_in_period", n=f.batches_rejected))
    limit = QUARANTINE_WARN * _failure_budget(settings, f.stream)
    if f.rows_in and f.rows_quarantined / f.rows_in > limit:
        issues.append(_issue("quarantine_share", share=f"{f.rows_quarantined / f.rows_in:.1%}", limit=f"{limit:.1%}"))
    if f.batches_with_drift:
        issues.append(_issue("schema_drift"))
    return issues


def _granted(settings: Settings) -> dict[str, list[str]]:
    """The consumers each feed is granted to, by the sharing policies."""
    granted: dict[str, list[str]] = {}
    for policy in sorted(load_policies(settings.policies_dir).values(), key=lambda p: p.consumer):
        for name in load_feeds():
            if policy.grants(name):
                granted.setdefault(name, []).append(policy.consumer)
    return granted


def _published_feeds(session: Session) -> set[str]:
    return set(session.scalars(select(Partition.feed).distinct()))


def _feed_status(
    feed: Feed, facts: dict[str, StreamFacts], published: bool, granted: bool, now: datetime
) -> dict[str, Any]:
    """A feed's status, issues, watermark and freshness, from its sources' facts."""
    ends = [facts[s].newest_loaded_end for s in feed.sources]
    watermark = None if any(e is None for e in ends) else min(e for e in ends if e is not None)
    issues = []
    for stream in feed.sources:
        for issue in facts[stream].issues:
            issues.append(_issue("source", issue["status"], stream=stream, detail=issue["en"], detail_zh=issue["zh"]))
    if granted and not published and watermark is not None:
        issues.append(_issue("not_published"))
    return {
        "feed": feed.name,
        "status": _worst([i["status"] for i in issues]),
        "issues": issues,
        "watermark": _iso(watermark),
        "freshness_seconds": _seconds(now, watermark),
    }


def feed_quality(settings: Settings, feed_name: str, now: datetime | None = None) -> dict[str, Any]:
    """One feed's quality status and freshness (for the catalog): status, issues, watermark, freshness."""
    now = now or datetime.now(UTC)
    feed = load_feeds()[feed_name]
    with session_scope(settings.control_url) as session:
        facts = _stream_facts(session, settings, now, feed.sources)
        published = feed_name in _published_feeds(session)
    return {**_feed_status(feed, facts, published, feed_name in _granted(settings), now), "checked_at": _iso(now)}


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
    return {**status, "freshness_seconds": _seconds(now, watermark), "checked_at": _iso(checked_at)}


def _all_feed_statuses(settings: Settings, now: datetime) -> dict[str, dict[str, Any]]:
    feeds = load_feeds()
    streams = sorted({s for f in feeds.values() for s in f.sources})
    with session_scope(settings.control_url) as session:
        facts = _stream_facts(session, settings, now, streams)
        published = _published_feeds(session)
    granted = _granted(settings)
    return {name: _feed_status(f, facts, name in published, name in granted, now) for name, f in feeds.items()}


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
    in_period = (q.community_id == settings.community_id, q.window_end > now - REPORT_PERIOD, q.window_end <= now)
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
            "last_published": _iso(last_at),
        }
    return out


def quality_report(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """The data-quality report of the hub's community: per stream and per feed (see the module's rules)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    feeds = load_feeds()
    with session_scope(settings.control_url) as session:
        streams = _reported_streams(session, settings)
        facts = _stream_facts(session, settings, now, streams)
        reasons, failed, evaluated = _period_details(session, settings, now)
        consumers = _consumers(session)
    granted = _granted(settings)
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
                "newest_loaded_window_end": _iso(f.newest_loaded_end),
                "window_seconds": int(f.window.total_seconds()),
                "freshness_seconds": _seconds(now, f.newest_loaded_end),
            }
        )
    feed_rows: list[dict[str, Any]] = []
    for name, feed in feeds.items():
        status = _feed_status(feed, facts, name in consumers, name in granted, now)
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
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _iso(now),
        "community": {"id": settings.community_id, "name": settings.community_name},
        "period": {"start": _iso(now - REPORT_PERIOD), "end": _iso(now)},
        "rules": RULES,
        "summary": counts,
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
    env.filters.update(local=local, age=age)
    return env.get_template("quality.html").render(report=report, timezone=timezone)
