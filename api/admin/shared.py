"""The shared-data page: every export in the audit log, and the exact rows of one export.

An export is an audit entry of a request that served rows of a feed. Its `detail` names
the partition versions served (seq, partition, version, rows) and the Content-Digest of
the body the consumer received. Drilling down reads those published Parquet files again;
the one thing the entry does not say is where in its first partition a page began (the
cursor's offset), so the offsets are tried until the rendered body has the recorded
digest: rows shown as "confirmed" are byte for byte what the consumer received.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from api.asgi import body_digest
from api.formats import FORMATS
from api.lake_files import partition_path
from kernel.settings import Settings
from schemas.feeds import Feed
from warehouse.control import session_scope
from warehouse.models import AuditEntry, Partition

PAGE = 100
RENDER_BUDGET = 1_000_000  # rows rendered at most while scanning for a page's offset
OFFSET_HISTORY = 200  # earlier exports consulted for the likely offset
SHOWN_ROWS = 500


# What counts as an export: a pull answered by the export API, or a push to a consumer's platform
# (the VIID cascade's acknowledged notifications, peers/viid/).
EXPORT_ACTIONS = ("request", "push")


@dataclass(frozen=True)
class ExportFilter:
    """What the shared-data page was asked to show."""

    consumer: str | None = None
    feed: str | None = None
    day_from: date | None = None
    day_to: date | None = None
    page: int = 0


@dataclass
class Export:
    """One export as the page lists it."""

    seq: int
    at: datetime
    consumer: str
    feed: str
    path: str
    rows: int
    fields: list[str]
    partitions: list[dict[str, Any]]
    policy_fingerprint: str | None
    format: str | None
    response_digest: str | None


@dataclass
class ExportRows:
    """The rows of one export, read back from the published partitions it names."""

    export: Export
    fields: list[str]
    rows: list[dict[str, Any]]
    confirmed: bool | None  # True: the digest matches; False: it does not; None: nothing to check
    missing: list[str] = field(default_factory=list)  # partitions no longer in the lake


def _export(entry: AuditEntry) -> Export:
    detail = json.loads(entry.detail or "{}")
    return Export(
        seq=entry.seq,
        at=entry.at,
        consumer=entry.actor,
        feed=entry.feed or "",
        path=entry.path or "",
        rows=entry.rows or 0,
        fields=list(detail.get("fields") or []),
        partitions=list(detail.get("partitions") or []),
        policy_fingerprint=entry.policy_fingerprint or _fingerprint(detail),
        format=detail.get("format"),
        response_digest=detail.get("response_digest"),
    )


def _fingerprint(detail: dict[str, Any]) -> str | None:
    prints = {p.get("policy_fingerprint") for p in detail.get("partitions") or []} - {None}
    return prints.pop() if len(prints) == 1 else None


def _exports_query(timezone: str, wanted: ExportFilter) -> Any:
    query = select(AuditEntry).where(
        AuditEntry.action.in_(EXPORT_ACTIONS),
        AuditEntry.outcome == "ok",
        AuditEntry.feed.is_not(None),
        AuditEntry.rows > 0,
    )
    zone = ZoneInfo(timezone)
    if wanted.consumer:
        query = query.where(AuditEntry.actor == wanted.consumer)
    if wanted.feed:
        query = query.where(AuditEntry.feed == wanted.feed)
    # Days are the community's local days, as people there count them.
    if wanted.day_from:
        query = query.where(AuditEntry.at >= datetime.combine(wanted.day_from, time(), zone))
    if wanted.day_to:
        query = query.where(AuditEntry.at < datetime.combine(wanted.day_to + timedelta(days=1), time(), zone))
    return query


def list_exports(settings: Settings, wanted: ExportFilter) -> tuple[list[Export], bool]:
    """One page of exports, newest first, and whether there are more."""
    query = _exports_query(settings.timezone, wanted).order_by(AuditEntry.seq.desc())
    query = query.offset(wanted.page * PAGE).limit(PAGE + 1)
    with session_scope(settings.control_url) as session:
        entries = session.execute(query).scalars().all()
        exports = [_export(e) for e in entries[:PAGE]]
    return exports, len(entries) > PAGE


def export_choices(settings: Settings) -> tuple[list[str], list[str]]:
    """The consumers and feeds that appear in exports, for the filter's menus."""
    base = _exports_query(settings.timezone, ExportFilter()).subquery()
    with session_scope(settings.control_url) as session:
        consumers = session.execute(select(base.c.actor).distinct().order_by(base.c.actor)).scalars().all()
        feeds = session.execute(select(base.c.feed).distinct().order_by(base.c.feed)).scalars().all()
    return list(consumers), [f for f in feeds if f]


def find_export(settings: Settings, seq: int) -> Export | None:
    """The export recorded as audit entry `seq`, None if that entry is no export."""
    with session_scope(settings.control_url) as session:
        found = session.execute(_exports_query(settings.timezone, ExportFilter()).where(AuditEntry.seq == seq))
        entry = found.scalar_one_or_none()
        return _export(entry) if entry else None


def export_rows(settings: Settings, export: Export, feed: Feed | None) -> ExportRows:
    """The rows the consumer received in `export`, read from the published partitions."""
    tables: list[pa.Table] = []
    files: list[bytes] = []
    missing: list[str] = []
    with session_scope(settings.control_url) as session:
        for served in export.partitions:
            partition = session.get(Partition, served["seq"])
            if partition is None:
                missing.append(f"{served.get('partition')} v{served.get('version')}")
                continue
            try:
                path = partition_path(settings.lake_path, partition)
                tables.append(pq.read_table(path))
                files.append(path.read_bytes() if _whole_file(export) else b"")
            except (FileNotFoundError, OSError, ValueError):
                missing.append(f"{partition.partition_key} v{partition.version}")
    if missing or not tables:
        return ExportRows(export, export.fields, [], None, missing)
    counts = [int(p["rows"]) for p in export.partitions]
    offsets = _likely_offsets(settings, export)
    chunks, confirmed = _served_chunks(tables, counts, export, feed, offsets)
    if _whole_file(export) and files and export.response_digest:
        # A whole partition file was handed over: its bytes are the body.
        confirmed = body_digest(files[0]) == export.response_digest
    fields = export.fields or chunks[0].column_names
    rows = [row for chunk in chunks for row in chunk.select([f for f in fields if f in chunk.column_names]).to_pylist()]
    return ExportRows(export, fields, rows[:SHOWN_ROWS], confirmed)


def _whole_file(export: Export) -> bool:
    """Whether the body was a partition's Parquet file (a partition download, or records as parquet)."""
    record_format = FORMATS.get(export.format or "")
    return "/partitions/" in export.path or (record_format is not None and record_format.render is None)


def _likely_offsets(settings: Settings, export: Export) -> list[int]:
    """Where the page most likely began in its first partition: a consumer following its
    cursor starts where its earlier pages of that partition ended, so the sums of the rows
    its latest earlier exports took from it, newest first."""
    if not export.partitions:
        return []
    first = int(export.partitions[0]["seq"])
    query = (
        _exports_query(settings.timezone, ExportFilter(export.consumer, export.feed))
        .where(AuditEntry.seq < export.seq, AuditEntry.detail.like(f'%"seq":{first},%'))
        .order_by(AuditEntry.seq.desc())
        .limit(OFFSET_HISTORY)
    )
    with session_scope(settings.control_url) as session:
        earlier = [_export(entry) for entry in session.execute(query).scalars()]
    offsets, total = [], 0
    for previous in earlier:
        total += sum(int(p["rows"]) for p in previous.partitions if int(p["seq"]) == first)
        offsets.append(total)
    return offsets


def _served_chunks(
    tables: list[pa.Table], counts: list[int], export: Export, feed: Feed | None, likely: list[int]
) -> tuple[list[pa.Table], bool | None]:
    """The slices served: later partitions from their start, the first from the offset whose
    rendering has the recorded digest (or, when it cannot be checked, from its start).

    The likely offsets go first; then every offset, within a budget of rows rendered."""
    rest = [table.slice(0, count) for table, count in zip(tables[1:], counts[1:], strict=True)]
    first, count = tables[0], counts[0]
    if _whole_file(export):
        return [first], None
    render = FORMATS.get(export.format or "")
    if render is None or render.render is None or feed is None or not export.response_digest:
        return [first.slice(0, count), *rest], None
    last = first.num_rows - count
    scan = range(min(last, max(1, RENDER_BUDGET // max(count, 1))) + 1)
    for offset in dict.fromkeys([0, *(o for o in likely if o <= last), *scan]):
        chunks = [first.slice(offset, count), *rest]
        if body_digest(render.render(chunks, export.fields, feed)) == export.response_digest:
            return chunks, True
    return [first.slice(0, count), *rest], False
