"""The audit log's chain: append an entry, verify the chain (used by the API, the publisher,
retention and consent alike, so it lives below all of them).

Each entry's hash covers the previous entry's hash and the entry's own fields (its `seq`
included), so editing, deleting or reordering entries breaks the chain, and the head row
names the last entry, so cutting off the tail shows too. Appends from many processes are
serialised by locking the head row first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError as DuplicateRow
from sqlalchemy.orm import Session

from privacy.jws import canonical_json
from warehouse.audit_chain import GENESIS_HASH, AuditReport, Link, chain_hash, check_end, diagnose, quick_check
from warehouse.models import AuditEntry, AuditHead

HEAD_ID = 1


HASHED = (
    "seq",
    "at",
    "actor",
    "action",
    "method",
    "path",
    "feed",
    "status_code",
    "outcome",
    "rows",
    "policy_fingerprint",
    "detail",
)


def hashed_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """The fields an entry's hash covers, in a form that survives a round trip through the DB."""
    fields = {name: values[name] for name in HASHED}
    fields["at"] = values["at"].astimezone(UTC).isoformat(timespec="microseconds")
    return fields


def entry_fields(entry: AuditEntry) -> dict[str, Any]:
    """The fields a stored entry's hash covers."""
    return hashed_fields({name: getattr(entry, name) for name in HASHED})


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    """sha256(prev_hash ‖ canonical_json(fields)) as hex."""
    return chain_hash(prev_hash, entry_fields(entry))


@dataclass(frozen=True)
class AuditFacts:
    """What one entry says: who did what, to which feed, with what outcome."""

    actor: str
    action: str
    outcome: str
    at: datetime
    method: str | None = None
    path: str | None = None
    feed: str | None = None
    status_code: int | None = None
    rows: int | None = None
    policy_fingerprint: str | None = None
    detail: dict[str, Any] | None = None


def new_entry(seq: int, prev_hash: str, facts: AuditFacts) -> dict[str, Any]:
    """The row of the entry `seq` after `prev_hash`, hash included: the one way an entry is
    built, whether appended alone (`append_audit`) or in the API's batches (api.audit_writer)."""
    row: dict[str, Any] = {
        "seq": seq,
        "at": facts.at.astimezone(UTC),
        "actor": facts.actor,
        "action": facts.action,
        "method": facts.method,
        "path": facts.path[:500] if facts.path else facts.path,
        "feed": facts.feed,
        "status_code": facts.status_code,
        "outcome": facts.outcome,
        "rows": facts.rows,
        "policy_fingerprint": facts.policy_fingerprint,
        "detail": canonical_json(facts.detail).decode() if facts.detail is not None else None,
        "prev_hash": prev_hash,
    }
    row["entry_hash"] = chain_hash(prev_hash, hashed_fields(row))
    return row


def _lock_head(session: Session) -> AuditHead:
    # The no-op UPDATE takes SQLite's write lock, or the row lock in PostgreSQL, before
    # the head is read, so two appenders can never chain onto the same entry.
    result = session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(last_seq=AuditHead.last_seq))
    if not cast(CursorResult[Any], result).rowcount:
        last = session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).scalar()
        try:
            # A savepoint: if another process created the head meanwhile, lock theirs instead.
            with session.begin_nested():
                session.add(
                    AuditHead(
                        id=HEAD_ID,
                        last_seq=last.seq if last else 0,
                        last_hash=last.entry_hash if last else GENESIS_HASH,
                    )
                )
        except DuplicateRow:
            session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(last_seq=AuditHead.last_seq))
    # populate_existing: the session may hold an older copy of the head from a prior append.
    query = select(AuditHead).where(AuditHead.id == HEAD_ID).execution_options(populate_existing=True)
    return session.execute(query).scalar_one()


def append_audit(session: Session, *, at: datetime | None = None, **facts: Any) -> AuditEntry:
    """Append one entry (the fields of `AuditFacts`) to the chain inside the caller's
    transaction and return it."""
    head = _lock_head(session)
    entry = AuditEntry(**new_entry(head.last_seq + 1, head.last_hash, AuditFacts(at=at or datetime.now(UTC), **facts)))
    session.add(entry)
    head.last_seq = entry.seq
    head.last_hash = entry.entry_hash
    session.flush()
    return entry


def record_event(control_url: str, *, actor: str, action: str, outcome: str = "ok", **facts: Any) -> int:
    """Append one entry in a transaction of its own (a command's or the console's action that
    changes who may do what: accounts, keys, policies); its seq."""
    from warehouse.control import session_scope

    with session_scope(control_url) as session:
        return append_audit(session, actor=actor, action=action, outcome=outcome, **facts).seq


def links_of(session: Session, first_seq: int = 1, last_seq: int | None = None) -> Iterator[Link]:
    """The stored entries from `first_seq`, as links of the chain, streamed in seq order."""
    query = select(AuditEntry).where(AuditEntry.seq >= first_seq).order_by(AuditEntry.seq)
    if last_seq is not None:
        query = query.where(AuditEntry.seq <= last_seq)
    for entry in session.execute(query.execution_options(yield_per=1000)).scalars():
        yield Link(entry_fields(entry), entry.prev_hash, entry.entry_hash)


def verify_links(
    links: Iterable[Link], start_hash: str, start_seq: int, again: Callable[[], Iterable[Link]]
) -> tuple[AuditReport, str]:
    """A chain checked in one pass; only a broken one is read again (`again`) and diagnosed."""
    intact, count, last_hash, last = quick_check(links, start_hash, start_seq)
    if intact:
        return AuditReport(entries=count, last_seq=last), last_hash
    everything = list(again())
    report = diagnose(everything, start_hash, start_seq)
    tail = next((x for x in everything if x.seq == report.last_seq), None)
    return report, tail.entry_hash if tail else start_hash


def verify_session(session: Session) -> AuditReport:
    """The audit log of this database: which entries were edited, deleted or reordered."""
    report, last_hash = verify_links(links_of(session), GENESIS_HASH, 1, lambda: links_of(session))
    head = session.get(AuditHead, HEAD_ID)
    if head is None:
        if report.entries:
            report.problems.append("the audit head row is missing")
    else:
        check_end(report, last_hash, head.last_seq, head.last_hash)
    return report


def verify_chain(session: Session) -> list[str]:
    """Every break in the chain, as readable problems; an empty list means intact."""
    return verify_session(session).problems


def dump_detail(detail: str | None) -> dict[str, Any] | None:
    """An entry's stored `detail` as a dict."""
    return json.loads(detail) if detail else None
