"""The audit log as people read it (issue 19, item 3): every entry sorted into a *kind*
(export, refusal, sign-in, account change, key registration or revocation, policy change,
key rotation, retention purge, …), filtered by consumer, feed, kind and local date range,
page by page, each entry with its proof: its place in the hash chain, and for an export
the re-rendered rows the shared-data page confirms against the recorded digest.

Kinds are read off the entries' `action` and `outcome`: nothing is stored twice and the
chain is untouched. Reads that served no rows (catalogs, manifests, the JWKS) are the kind
"access" and the default view leaves them out; the console's own page views and static
files are not audited at all (the console has its own listener, outside the API's gate).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, not_, or_, select, true

from api.admin.labels import Labels
from api.admin.shared import EXPORT_ACTIONS
from api.formats import FORMULA_STARTS
from kernel.settings import Settings
from warehouse.audit import entry_fields, entry_hash
from warehouse.control import session_scope
from warehouse.models import AuditEntry

PAGE = 50
CSV_LIMIT = 100_000  # rows in one CSV download at most

A = AuditEntry
KEY_ACTIONS = (
    "console_request_key", "console_request_revoke", "console_confirm", "console_register_key",
    "console_revoke_consumer", "key_registered", "key_revoked", "consumer_revoked",
)  # fmt: skip
ACCOUNT_ACTIONS = ("admin_added", "admin_disabled")
POLICY_ACTIONS = ("policies_reload", "policy_changed")
RETENTION_ACTIONS = ("purge", "seal")
PUBLISH_ACTIONS = ("publish", "reconcile")
_EXPORT = and_(A.action.in_(EXPORT_ACTIONS), A.outcome == "ok", A.feed.is_not(None), A.rows > 0)
_REFUSAL = and_(A.action.in_((*EXPORT_ACTIONS, "stream_aborted")), A.outcome != "ok")
# Each kind as a condition on the entry; "access" and "other" are what the named kinds leave.
NAMED: dict[str, ColumnElement[bool]] = {
    "export": _EXPORT,
    "refusal": _REFUSAL,
    "sign_in": A.action == "console_sign_in",
    "account": A.action.in_(ACCOUNT_ACTIONS),
    "key": A.action.in_(KEY_ACTIONS),
    "policy": A.action.in_(POLICY_ACTIONS),
    "key_rotation": A.action == "keys",
    "retention": A.action.in_(RETENTION_ACTIONS),
    "publish": A.action.in_(PUBLISH_ACTIONS),
    "consent": A.action == "consent",
}
_ACCESS = and_(A.action == "request", A.outcome == "ok", not_(_EXPORT))
KINDS = (*NAMED, "access", "other")
DEFAULT_HIDDEN = ("access",)


def kind_condition(kind: str) -> ColumnElement[bool]:
    """The entries of one kind."""
    if kind == "access":
        return _ACCESS
    if kind == "other":
        return not_(or_(_ACCESS, *NAMED.values()))
    return NAMED[kind]


def kind_of(entry: AuditEntry) -> str:
    """The kind of one entry (the Python twin of `kind_condition`)."""
    action, outcome = entry.action, entry.outcome
    if action in EXPORT_ACTIONS and outcome == "ok" and entry.feed and (entry.rows or 0) > 0:
        return "export"
    if action in (*EXPORT_ACTIONS, "stream_aborted") and outcome != "ok":
        return "refusal"
    named = {
        "console_sign_in": "sign_in", "keys": "key_rotation", "consent": "consent",
        **dict.fromkeys(ACCOUNT_ACTIONS, "account"), **dict.fromkeys(KEY_ACTIONS, "key"),
        **dict.fromkeys(POLICY_ACTIONS, "policy"), **dict.fromkeys(RETENTION_ACTIONS, "retention"),
        **dict.fromkeys(PUBLISH_ACTIONS, "publish"),
    }  # fmt: skip
    if action in named:
        return named[action]
    return "access" if action == "request" and outcome == "ok" else "other"


@dataclass(frozen=True)
class LogFilter:
    """What the log page was asked to show: kinds empty means every kind but the hidden ones."""

    consumer: str | None = None
    feed: str | None = None
    kinds: tuple[str, ...] = ()
    day_from: date | None = None
    day_to: date | None = None
    page: int = 0

    def query_string(self) -> str:
        """The filter as a query string (for the pager, the CSV and the print links)."""
        from urllib.parse import urlencode

        pairs: list[tuple[str, str]] = [("consumer", self.consumer or ""), ("feed", self.feed or "")]
        pairs += [("kind", k) for k in self.kinds]
        pairs += [("from", str(self.day_from or "")), ("to", str(self.day_to or ""))]
        return urlencode(pairs)


@dataclass
class LogEntry:
    """One entry as the page lists it: what happened, to whom, and where its proof is."""

    seq: int
    at: datetime
    kind: str
    actor: str
    action: str
    outcome: str
    feed: str | None
    rows: int | None
    status_code: int | None
    consumer: str | None
    path: str | None
    detail: dict[str, Any]  # told in words by api.admin.audit_words
    entry_hash: str


def _consumer_of(entry: AuditEntry, detail: dict[str, Any]) -> str | None:
    """The consumer an entry concerns: the actor of a request, or the one a key change names."""
    if entry.action in (*EXPORT_ACTIONS, "stream_aborted") and entry.actor not in ("anonymous", "hub"):
        return entry.actor
    named = detail.get("consumer")
    return str(named) if isinstance(named, str) else None


def as_log_entry(entry: AuditEntry) -> LogEntry:
    detail = _detail(entry)
    return LogEntry(
        seq=entry.seq,
        at=entry.at,
        kind=kind_of(entry),
        actor=entry.actor,
        action=entry.action,
        outcome=entry.outcome,
        feed=entry.feed,
        rows=entry.rows,
        status_code=entry.status_code,
        consumer=_consumer_of(entry, detail),
        path=entry.path,
        detail=detail,
        entry_hash=entry.entry_hash,
    )


def _detail(entry: AuditEntry) -> dict[str, Any]:
    try:
        found = json.loads(entry.detail or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _where(timezone: str, wanted: LogFilter) -> list[ColumnElement[bool]]:
    zone = ZoneInfo(timezone)
    kinds = [k for k in wanted.kinds if k in KINDS]
    chosen = or_(*(kind_condition(k) for k in kinds)) if kinds else not_(or_(*map(kind_condition, DEFAULT_HIDDEN)))
    conditions: list[ColumnElement[bool]] = [chosen]
    if wanted.consumer:
        # canonical JSON (sorted keys, no spaces) makes the consumer's key in a detail findable
        mention = A.detail.contains('"consumer":' + json.dumps(wanted.consumer, ensure_ascii=False))
        conditions.append(or_(A.actor == wanted.consumer, mention))
    if wanted.feed:
        conditions.append(A.feed == wanted.feed)
    # Days are the community's local days, as on the shared-data page.
    if wanted.day_from:
        conditions.append(A.at >= datetime.combine(wanted.day_from, time(), zone))
    if wanted.day_to:
        conditions.append(A.at < datetime.combine(wanted.day_to + timedelta(days=1), time(), zone))
    return conditions or [true()]


def list_entries(settings: Settings, wanted: LogFilter, limit: int = PAGE) -> tuple[list[LogEntry], bool]:
    """One page of entries, newest first, and whether there are more."""
    query = select(A).where(*_where(settings.timezone, wanted)).order_by(A.seq.desc())
    query = query.offset(max(wanted.page, 0) * limit).limit(limit + 1)
    with session_scope(settings.control_url) as session:
        found = session.execute(query).scalars().all()
        entries = [as_log_entry(e) for e in found[:limit]]
    return entries, len(found) > limit


def counts_by_kind(settings: Settings) -> dict[str, int]:
    """How many entries of each kind the log holds (the audit page: sharing events apart from
    reads without data)."""
    with session_scope(settings.control_url) as session:
        counted = {
            kind: session.execute(select(func.count()).where(kind_condition(kind))).scalar_one() for kind in KINDS
        }
    return {kind: int(n) for kind, n in counted.items() if n}


def choices(settings: Settings) -> tuple[list[str], list[str]]:
    """The consumers (request actors) and feeds that appear in the log, for the filter's menus."""
    with session_scope(settings.control_url) as session:
        actors = session.execute(
            select(A.actor).distinct().where(A.action.in_(EXPORT_ACTIONS), A.actor.not_in(("anonymous", "hub")))
        ).scalars()
        consumers = sorted(set(actors))
        feeds = sorted(f for f in session.execute(select(A.feed).distinct()).scalars() if f)
    return consumers, feeds


@dataclass
class ChainProof:
    """One entry's place in the chain: its hash recomputed, and its links to both neighbours."""

    entry: LogEntry
    fields: dict[str, Any]
    hashed: dict[str, Any]  # exactly what the hash covers (warehouse.audit.entry_fields)
    prev_hash: str
    hashes: bool  # its content, after prev_hash, gives its stored hash
    links_back: bool  # the previous entry's hash is this entry's prev_hash (genesis for the first)
    linked_forward: bool | None  # the next entry names this one (None: it is the last)
    previous: int | None
    following: int | None


def proof(settings: Settings, seq: int) -> ChainProof | None:
    """The chain proof of entry `seq`, None if there is no such entry."""
    from warehouse.audit import GENESIS_HASH

    with session_scope(settings.control_url) as session:
        entry = session.get(A, seq)
        if entry is None:
            return None
        before = session.execute(select(A).where(A.seq < seq).order_by(A.seq.desc()).limit(1)).scalar()
        after = session.execute(select(A).where(A.seq > seq).order_by(A.seq).limit(1)).scalar()
        fields = {
            "actor": entry.actor, "action": entry.action, "outcome": entry.outcome, "method": entry.method,
            "path": entry.path, "feed": entry.feed, "status_code": entry.status_code, "rows": entry.rows,
            "policy_fingerprint": entry.policy_fingerprint, "detail": _detail(entry),
        }  # fmt: skip
        return ChainProof(
            entry=as_log_entry(entry),
            fields=fields,
            hashed=entry_fields(entry),
            prev_hash=entry.prev_hash,
            hashes=entry_hash(entry.prev_hash, entry) == entry.entry_hash,
            links_back=entry.prev_hash == (before.entry_hash if before else GENESIS_HASH),
            linked_forward=None if after is None else after.prev_hash == entry.entry_hash,
            previous=before.seq if before else None,
            following=after.seq if after else None,
        )


def safe_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula (the export API's rule, api.formats)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def log_csv(settings: Settings, wanted: LogFilter, labels: Labels) -> bytes:
    """The filtered log (every page) as CSV for the owners' meeting: UTF-8 with a BOM, so that
    Excel shows the Chinese; local times; everything named in the reader's language (a
    consumer by its display name, a feed by its title, an outcome in words: the meeting reads
    it, and `seq` and the entry's hash lead an auditor to the entry and its proof page);
    formula-safe cells."""
    from api.admin.audit_words import outcome, summary_text

    t = labels.t
    zone = ZoneInfo(settings.timezone)
    entries, _ = list_entries(settings, LogFilter(**{**wanted.__dict__, "page": 0}), limit=CSV_LIMIT)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = ("seq", "at", "kind", "actor", "consumer", "action", "outcome", "feed", "rows", "summary", "hash")
    writer.writerow([t(f"log.col.{name}") for name in header])
    for e in entries:
        at = e.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        named = (
            t(f"log.kind.{e.kind}"), labels.actor(e.actor), labels.consumer(e.consumer) if e.consumer else "",
            labels.word("action", e.action), outcome(labels, e.outcome, e.status_code),
            labels.feed(e.feed) if e.feed else "",
        )  # fmt: skip
        values = (e.seq, at, *named, e.rows, summary_text(labels, e), e.entry_hash)
        writer.writerow([safe_cell(v) for v in values])
    return ("\ufeff" + out.getvalue()).encode()
