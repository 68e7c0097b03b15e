"""What the overview and the other read-only pages summarise: today's data in (per system)
and out (per consumer and feed), consent, the audit chain, and the parts other engineers
provide (quality, alarms), which are imported lazily and may be absent."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from api.admin.shared import EXPORT_ACTIONS
from kernel.errors import NeuronError
from kernel.settings import Settings
from warehouse import alarm_history
from warehouse import push_dead_letters as push_dead_letters_table
from warehouse import quality as quality_report
from warehouse.control import session_scope
from warehouse.models import AuditEntry
from warehouse.quality_rules import period

log = logging.getLogger(__name__)


@dataclass
class Today:
    """Rows in and out over the local day (the period every status view states: issue 19)."""

    start: datetime
    period: str = ""
    streams_by_state: dict[str, int] = field(default_factory=dict)
    feeds_by_state: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    rows_in_by_system: dict[int, int] = field(default_factory=dict)
    rows_quarantined_by_system: dict[int, int] = field(default_factory=dict)
    rows_out_by_consumer: dict[str, int] = field(default_factory=dict)
    rows_out_by_feed: dict[str, int] = field(default_factory=dict)
    exports: int = 0


@cache
def system_of(stream: str) -> int | None:
    """The system (1-9) a stream comes from, per its contract."""
    from schemas.contract import load_contract

    try:
        return load_contract(stream).system
    except (NeuronError, OSError, ValueError):
        return None


def local_midnight(now: datetime, timezone: str) -> datetime:
    """The start of the community's local day containing `now`."""
    zone = ZoneInfo(timezone)
    return datetime.combine(now.astimezone(zone).date(), time(), zone)


def day_report(settings: Settings, now: datetime) -> dict[str, Any] | None:
    """The quality report for `now` (the one computation of the day's counts and states), or
    None when it cannot be computed: the pages then say so instead of failing."""
    try:
        return quality_report.quality_report(settings, now)
    except Exception as exc:  # a provider's failure must not take the console down
        log.warning("quality report failed: %s", type(exc).__name__)
        return None


def today(settings: Settings, now: datetime, report: dict[str, Any] | None = None) -> Today:
    """Today's data in, by system, and out, by consumer and feed. Data in are the quality
    report's per-stream counts (`report`, see `day_report`): the numbers the quality page,
    `neuron status` and the catalog's period share."""
    day = period(settings.timezone, now)
    start = day.start
    result = Today(start, day.label)
    loads: list[tuple[str, int, int]] = []
    if report is not None:
        result.streams_by_state = {k: v for k, v in report["summary"]["streams"].items() if v}
        result.feeds_by_state = {k: v for k, v in report["summary"]["feeds"].items() if v}
        result.totals = dict(report["summary"]["totals"])
        loads = [(row["stream"], row["rows_loaded"], row["rows_quarantined"]) for row in report["streams"]]
    with session_scope(settings.control_url) as session:
        out = session.execute(
            select(AuditEntry.actor, AuditEntry.feed, func.sum(AuditEntry.rows), func.count())
            .where(
                AuditEntry.at >= start,
                AuditEntry.at < day.end,
                AuditEntry.action.in_(EXPORT_ACTIONS),
                AuditEntry.outcome == "ok",
                AuditEntry.feed.is_not(None),
                AuditEntry.rows > 0,
            )
            .group_by(AuditEntry.actor, AuditEntry.feed)
        ).all()
    rows_in: Counter[int] = Counter()
    quarantined: Counter[int] = Counter()
    for stream, loaded, bad in loads:
        if not loaded and not bad:
            continue
        system = system_of(stream) or 0
        rows_in[system] += int(loaded or 0)
        quarantined[system] += int(bad or 0)
    by_consumer: Counter[str] = Counter()
    by_feed: Counter[str] = Counter()
    for actor, feed, rows, count in out:
        by_consumer[actor] += int(rows or 0)
        by_feed[feed or ""] += int(rows or 0)
        result.exports += int(count)
    result.rows_in_by_system = dict(sorted(rows_in.items()))
    result.rows_quarantined_by_system = dict(sorted(quarantined.items()))
    result.rows_out_by_consumer = dict(sorted(by_consumer.items()))
    result.rows_out_by_feed = dict(sorted(by_feed.items()))
    return result


QUALITY_COLUMNS = [
    "stream", "status", "rows_in", "rows_loaded", "rows_quarantined",
    "quarantined_by_reason", "freshness_seconds", "issues",
]  # fmt: skip
ALARM_COLUMNS = [
    "alarm_id", "family", "category", "severity", "state", "raised_at", "acknowledged_at",
    "acknowledged_by", "cleared_at", "response_seconds", "escalated", "building",
]  # fmt: skip


@dataclass
class Provided:
    """What a lazily imported provider returned: rows to show, or why there are none."""

    available: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    columns: list[str] = field(default_factory=list)

    def count_by(self, key: str) -> dict[str, int]:
        """How many rows have each value of `key` (a status, a state)."""
        return dict(sorted(Counter(str(row.get(key)) for row in self.rows).items()))


def _as_rows(value: Any) -> list[dict[str, Any]]:
    """A provider's answer as table rows, whatever its shape (dicts, dataclasses, models)."""
    if isinstance(value, dict):
        items = value.get("streams") if isinstance(value.get("streams"), list) else None
        value = items if items is not None else [{"stream": k, **_as_row(v)} for k, v in value.items()]
    return [_as_row(item) for item in value or []]


def _as_row(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    if hasattr(item, "model_dump"):
        return dict(item.model_dump())
    return {"value": item}


def provided(provider: Callable[..., Any], *args: Any, columns: list[str] | None = None, **kwargs: Any) -> Provided:
    """Call a provider of rows for a page; a provider's failure is shown, not raised."""
    try:
        rows = _as_rows(provider(*args, **kwargs))
    except Exception as exc:  # a provider's failure must not take the console down
        log.warning("%s failed: %s", getattr(provider, "__qualname__", "provider"), type(exc).__name__)
        return Provided(True, [], type(exc).__name__)
    present = [c for c in columns or [] if any(c in row for row in rows)]
    return Provided(True, rows, None, present or (list(rows[0]) if rows else []))


def quality(settings: Settings, now: datetime | None = None, report: dict[str, Any] | None = None) -> Provided:
    """Per-stream quality (warehouse.quality) by the console's clock, or from `report` when the
    page computed it already (`day_report`); a report that cannot be computed is shown so."""
    found = report if report is not None else day_report(settings, now or datetime.now(UTC))
    if found is None:
        return Provided(True, [], "unavailable")
    return provided(lambda: found, columns=QUALITY_COLUMNS)


def alarms(settings: Settings) -> Provided:
    """The relay's alarms as the control database keeps them (warehouse.alarm_history)."""
    return provided(alarm_history.alarm_list, settings, columns=ALARM_COLUMNS)


DEAD_LETTER_COLUMNS = [
    "failed_at", "consumer", "channel", "feed", "entity_id", "entity_type", "error_type", "http_status", "attempts",
]  # fmt: skip


def push_dead_letters(settings: Settings) -> Provided:
    """What the consumers' NGSI-LD brokers would not take (written by peers/ngsi_ld)."""
    return provided(push_dead_letters_table.console_dead_letters, settings, columns=DEAD_LETTER_COLUMNS)


def open_alarms(listed: Provided) -> list[dict[str, Any]]:
    """Alarms not yet cleared."""
    return [a for a in listed.rows if a.get("state") != "cleared"]


def shown(value: Any, language: str) -> str:
    """A provider's value for people: bilingual texts in the reader's language, mappings and
    lists spelled out, nothing as raw JSON."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        if language in value and isinstance(value[language], str):
            return value[language]
        return ", ".join(f"{k}: {shown(v, language)}" for k, v in value.items()) or "—"
    if isinstance(value, list | tuple):
        return "; ".join(shown(v, language) for v in value) or "—"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


@dataclass
class ConsentSummary:
    """Per optional function: households opted in, withdrawn, and the withdrawals' effects."""

    opted_in: dict[str, int]
    withdrawn: dict[str, int]
    withdrawals: list[dict[str, Any]]


def consent_summary(settings: Settings, limit: int = 200) -> ConsentSummary:
    """Consent counts from the consent table; withdrawals and their effect from the audit log."""
    from warehouse.consent import FUNCTIONS
    from warehouse.models import ConsentRecord

    counts: dict[str, dict[bool, int]] = defaultdict(lambda: {True: 0, False: 0})
    with session_scope(settings.control_url) as session:
        grouped = session.execute(
            select(ConsentRecord.function, ConsentRecord.granted, func.count()).group_by(
                ConsentRecord.function, ConsentRecord.granted
            )
        ).all()
        entries = session.execute(
            select(AuditEntry)
            .where(AuditEntry.action == "consent", AuditEntry.outcome == "withdrawn")
            .order_by(AuditEntry.seq.desc())
            .limit(limit)
        ).scalars()
        # The audit log never names the household: the function and what was purged.
        withdrawals = [
            {
                "seq": e.seq,
                "at": e.at,
                "source": e.actor,
                "function": json.loads(e.detail or "{}").get("function", ""),
                "purged": len(json.loads(e.detail or "{}").get("purged_vault_objects") or []),
            }
            for e in entries
        ]
    for function, granted, count in grouped:
        counts[function][bool(granted)] = int(count)
    return ConsentSummary(
        opted_in={f: counts[f][True] for f in FUNCTIONS},
        withdrawn={f: counts[f][False] for f in FUNCTIONS},
        withdrawals=withdrawals,
    )
