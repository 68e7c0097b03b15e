"""The audit log's chain: append an entry, verify the chain (used by the API, the publisher,
retention and consent alike, so it lives below all of them).

Each entry's hash covers the previous entry's hash and the entry's own fields (its `seq`
included), so editing, deleting or reordering entries breaks the chain, and the head row
names the last entry, so cutting off the tail shows too. Appends from many processes are
serialised by locking the head row first.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError as DuplicateRow
from sqlalchemy.orm import Session

from privacy.jws import canonical_json
from warehouse.control import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64
HEAD_ID = 1


def entry_fields(entry: AuditEntry) -> dict[str, Any]:
    """The fields an entry's hash covers, in a form that survives a round trip through the DB."""
    return {
        "seq": entry.seq,
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "action": entry.action,
        "method": entry.method,
        "path": entry.path,
        "feed": entry.feed,
        "status_code": entry.status_code,
        "outcome": entry.outcome,
        "rows": entry.rows,
        "policy_fingerprint": entry.policy_fingerprint,
        "detail": entry.detail,
    }


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    """sha256(prev_hash ‖ canonical_json(fields)) as hex."""
    return hashlib.sha256(prev_hash.encode() + canonical_json(entry_fields(entry))).hexdigest()


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


def append_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    outcome: str,
    method: str | None = None,
    path: str | None = None,
    feed: str | None = None,
    status_code: int | None = None,
    rows: int | None = None,
    policy_fingerprint: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry to the chain inside the caller's transaction and return it."""
    head = _lock_head(session)
    entry = AuditEntry(
        seq=head.last_seq + 1,
        at=(at or datetime.now(UTC)).astimezone(UTC),
        actor=actor,
        action=action,
        method=method,
        path=path[:500] if path else path,
        feed=feed,
        status_code=status_code,
        outcome=outcome,
        rows=rows,
        policy_fingerprint=policy_fingerprint,
        detail=canonical_json(detail).decode() if detail is not None else None,
        prev_hash=head.last_hash,
    )
    entry.entry_hash = entry_hash(head.last_hash, entry)
    session.add(entry)
    head.last_seq = entry.seq
    head.last_hash = entry.entry_hash
    session.flush()
    return entry


def verify_chain(session: Session) -> list[str]:
    """Every break in the chain, as readable problems; an empty list means intact."""
    problems: list[str] = []
    expected_prev, expected_seq = GENESIS_HASH, 1
    entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=1000))
    for entry in entries.scalars():
        if entry.seq != expected_seq:
            problems.append(f"entries {expected_seq}..{entry.seq - 1} are missing")
        if entry.prev_hash != expected_prev:
            problems.append(f"entry {entry.seq} does not link to the entry before it (deleted or reordered)")
        if entry_hash(entry.prev_hash, entry) != entry.entry_hash:
            problems.append(f"entry {entry.seq} was altered (its hash does not match its content)")
        expected_prev, expected_seq = entry.entry_hash, entry.seq + 1
    head = session.get(AuditHead, HEAD_ID)
    last_seq = expected_seq - 1
    if head is None:
        if last_seq:
            problems.append("the audit head row is missing")
    elif (head.last_seq, head.last_hash) != (last_seq, expected_prev):
        problems.append(f"the chain ends at entry {last_seq} but its head names entry {head.last_seq}")
    return problems


def dump_detail(detail: str | None) -> dict[str, Any] | None:
    """An entry's stored `detail` as a dict."""
    return json.loads(detail) if detail else None
