"""The status rules of data quality, and the facts they are judged on: per stream, from the
kept validation results (`warehouse.quality_ledger`) and the load ledger; per feed, from its
sources. Control database only, never the live DuckDB file, so the API can ask too.

Per stream, over the batches whose window ended in the report period — the community's local
day so far ("2026-12-07 00:00–24:00 Asia/Shanghai", `period`), the one period every view
states (console, `neuron status` and `neuron quality`, the consumers' catalog) — rows in,
loaded, quarantined; whatever the period, the last batch and the freshness (now − the end of
the newest loaded window). The stream's *window* is the length of its newest loaded window
(an hourly stream: 1 h), so the rules follow each stream's cadence. Worst first (issue 19):
- fail ("failing"): the newest batch was rejected (over its failure budget, or drift under a
  frozen contract: nothing of it was loaded).
- stale: loaded before, but no new data for more than 4 windows.
- not_connected ("not yet connected"): no window has ever been loaded (and none was rejected).
- warn: no new data for more than 2 windows; a batch of the period was rejected; more than half
  the failure budget of the period's rows quarantined; schema drift in the period.
- ok: none of these.
A feed is as bad as its worst source, and is not yet connected while a policy grants it but
nothing has been published. Its freshness is now − its watermark (the least of its sources' newest loaded
window ends, as in `publisher.feed_watermark`, for the hub's community).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from kernel.errors import ConfigError
from kernel.settings import Settings
from privacy.policy import load_policies
from schemas.contract import load_contract
from schemas.feeds import Feed, load_feeds
from warehouse.models import BatchQuality, LoadRecord, Partition

LATE_WINDOWS = 2  # warn past this many windows without new data
STALE_WINDOWS = 4  # stale past this many
QUARANTINE_WARN = 0.5  # warn when the period's quarantined share passes this part of the failure budget
STATUSES = ("ok", "warn", "not_connected", "stale", "fail")  # best to worst
RULES = {
    "period": "the community's local day so far",
    "late_windows": LATE_WINDOWS,
    "stale_windows": STALE_WINDOWS,
    "quarantine_warn_share_of_budget": QUARANTINE_WARN,
}
# (status, English, Chinese) per issue; the fields in braces are filled in per stream or feed.
ISSUES = {
    "never_loaded": ("not_connected", "not yet connected: no window has been loaded yet", "尚未接入：还没有加载过数据"),
    "last_batch_rejected": (
        "fail",
        "the newest batch was rejected (too many bad rows, or the source changed its fields): nothing of it loaded",
        "最新批次被拒收（错误记录过多或数据源字段变化），未加载",
    ),
    "stale": (
        "stale",
        "no new data for {age} (stale after {limit})",
        "已 {age_zh} 无新数据（超过 {limit_zh} 即为过时）",
    ),
    "late": ("warn", "no new data for {age} (warns after {limit})", "已 {age_zh} 无新数据（超过 {limit_zh} 即提示）"),
    "rejected_in_period": ("warn", "{n} batch(es) rejected in the period", "本期有 {n} 个批次被拒收"),
    "quarantine_share": (
        "warn",
        "{share} of the period's rows quarantined (warns above {limit})",
        "本期 {share} 的记录被隔离（超过 {limit} 即提示）",
    ),
    "schema_drift": ("warn", "the source sent fields its contract does not declare", "数据源发送了契约未声明的字段"),
    "not_published": ("not_connected", "granted to a consumer but not published yet", "已授权但尚未发布"),
    "source": ("", "source {stream}: {detail}", "数据源 {stream}：{detail_zh}"),
}


def issue(code: str, status: str | None = None, **values: Any) -> dict[str, str]:
    """One issue in both languages, with its status (`status` overrides the code's own)."""
    default, en, zh = ISSUES[code]
    return {"code": code, "status": status or default, "en": en.format(**values), "zh": zh.format(**values)}


def worst(statuses: list[str]) -> str:
    """The worst of some statuses ("ok" for none)."""
    return max(statuses, key=STATUSES.index, default="ok")


def duration_text(seconds: float) -> tuple[str, str]:
    """A duration as an admin reads it, in English and Chinese: "1 d 3 h", "1天3小时"."""
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [(days, "d", "天"), (hours, "h", "小时"), (mins, "min", "分钟")]
    shown = [(n, en, zh) for n, en, zh in parts if n][:2] or [(0, "min", "分钟")]
    return " ".join(f"{n} {en}" for n, en, _ in shown), "".join(f"{n}{zh}" for n, _, zh in shown)


@dataclass(frozen=True)
class Period:
    """The period every status view counts over: the community's local day containing `now`."""

    start: datetime
    end: datetime
    timezone: str

    @property
    def label(self) -> str:
        """As the views state it: "2026-12-07 00:00–24:00 Asia/Shanghai"."""
        return f"{self.start.astimezone(ZoneInfo(self.timezone)):%Y-%m-%d} 00:00–24:00 {self.timezone}"

    def as_json(self) -> dict[str, str | None]:
        return {"start": iso(self.start), "end": iso(self.end), "timezone": self.timezone, "label": self.label}


def period(timezone: str, now: datetime) -> Period:
    """The local day containing `now`, in the hub's time zone; a batch counts in the day its
    window ended in, so a window ending at midnight (24:00) counts in the day it closes, and
    at midnight itself the period is still that day (start < now <= end)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine((now - timedelta(microseconds=1)).astimezone(zone).date(), time(), zone)
    following = datetime.combine(start.date() + timedelta(days=1), time(), zone)  # 23 or 25 h on a DST day
    return Period(start, following, timezone)


def iso(value: datetime | None) -> str | None:
    """An instant in ISO 8601, UTC."""
    return value.astimezone(UTC).isoformat() if value else None


def seconds_since(now: datetime, since: datetime | None) -> int | None:
    """Whole seconds from `since` to `now` (never negative); None when there is no `since`."""
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
        return worst([i["status"] for i in self.issues])


def _failure_budget(settings: Settings, stream: str) -> float:
    try:
        budget = load_contract(stream).failure_budget
    except ConfigError:  # a stream whose contract has gone: the hub's default
        budget = None
    return settings.failure_budget if budget is None else budget


def stream_facts(session: Session, settings: Settings, now: datetime, streams: list[str]) -> dict[str, StreamFacts]:
    """Period totals, the newest loaded window and the last batch of each stream: four queries."""
    community = settings.community_id
    facts = {s: StreamFacts(s) for s in streams}
    q = BatchQuality
    day = period(settings.timezone, now)
    in_period = (q.community_id == community, q.window_end > day.start, q.window_end <= now)
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
            "window_start": iso(batch.window_start),
            "window_end": iso(batch.window_end),
            "validated_at": iso(batch.validated_at),
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
        issues.append(issue("never_loaded"))
    else:
        age = now - f.newest_loaded_end
        for code, windows in (("stale", STALE_WINDOWS), ("late", LATE_WINDOWS)):
            if age > windows * f.window:
                (age_en, age_zh), (lim_en, lim_zh) = (
                    duration_text(age.total_seconds()),
                    duration_text((windows * f.window).total_seconds()),
                )
                issues.append(issue(code, age=age_en, age_zh=age_zh, limit=lim_en, limit_zh=lim_zh))
                break
    if f.last_batch and f.last_batch["rejected"]:
        issues.append(issue("last_batch_rejected"))
    elif f.batches_rejected:
        issues.append(issue("rejected_in_period", n=f.batches_rejected))
    limit = QUARANTINE_WARN * _failure_budget(settings, f.stream)
    if f.rows_in and f.rows_quarantined / f.rows_in > limit:
        issues.append(issue("quarantine_share", share=f"{f.rows_quarantined / f.rows_in:.1%}", limit=f"{limit:.1%}"))
    if f.batches_with_drift:
        issues.append(issue("schema_drift"))
    return issues


def granted_consumers(settings: Settings) -> dict[str, list[str]]:
    """The consumers each feed is granted to, by the sharing policies."""
    granted: dict[str, list[str]] = {}
    for policy in sorted(load_policies(settings.policies_dir).values(), key=lambda p: p.consumer):
        for name in load_feeds():
            if policy.grants(name):
                granted.setdefault(name, []).append(policy.consumer)
    return granted


def published_feeds(session: Session) -> set[str]:
    """The feeds with at least one published partition, for any consumer."""
    return set(session.scalars(select(Partition.feed).distinct()))


def feed_status(
    feed: Feed, facts: dict[str, StreamFacts], published: bool, granted: bool, now: datetime
) -> dict[str, Any]:
    """A feed's status, issues, watermark and freshness, from its sources' facts."""
    ends = [facts[s].newest_loaded_end for s in feed.sources]
    watermark = None if any(e is None for e in ends) else min(e for e in ends if e is not None)
    issues = []
    for stream in feed.sources:
        for found in facts[stream].issues:
            issues.append(issue("source", found["status"], stream=stream, detail=found["en"], detail_zh=found["zh"]))
    if granted and not published and watermark is not None:
        issues.append(issue("not_published"))
    return {
        "feed": feed.name,
        "status": worst([i["status"] for i in issues]),
        "issues": issues,
        "watermark": iso(watermark),
        "freshness_seconds": seconds_since(now, watermark),
    }
