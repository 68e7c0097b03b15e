"""The audit log: one entry per request (refusals included), no request values in it, and a
hash chain that shows edited, deleted and reordered entries, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from itertools import pairwise

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from api.audit import GENESIS_HASH, append_audit, entry_fields, entry_hash, verify_chain
from api.client import verify_response
from tests.api.hub import FLOW_FIELDS, FLOW_MORE, LiveHub, send
from tests.api.lake import FEED
from warehouse.control import engine_for, session_scope
from warehouse.migrations import migrate
from warehouse.models import AuditEntry, AuditHead

RECORDS = f"/v1/feeds/{FEED}/records"


def all_entries(url: str) -> list[AuditEntry]:
    with session_scope(url) as session:
        return list(session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars())


def test_every_request_is_audited_once_without_request_values(
    fresh_hub: LiveHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = fresh_hub.settings.control_url
    before = len(all_entries(url))
    district, open_data = fresh_hub.identities["district"], fresh_hub.identities["open_data"]
    replayed = fresh_hub.signed("/v1/feeds", district)
    first_page = send(fresh_hub.signed(RECORDS, district, {"limit": "3"}))
    cursor = first_page.headers["Neuron-Next-Cursor"]
    requests_made = [
        replayed,
        first_page.request,
        fresh_hub.signed(RECORDS, district, {"limit": "3", "cursor": cursor}),
        fresh_hub.signed(RECORDS, district, {"format": "parquet"}),
        fresh_hub.signed(f"/v1/feeds/{FEED}", open_data),
        fresh_hub.signed("/v1/feeds", None),
        replayed,
        fresh_hub.signed(RECORDS, district, {"limit": "51"}),
        fresh_hub.signed("/healthz", district),  # not audited: a probe, no data
        fresh_hub.signed("/.well-known/jwks.json", None),
        fresh_hub.signed("/v1/nothing-here", district),
    ]
    statuses = [send(r).status_code if r is not first_page.request else 200 for r in requests_made]
    assert statuses == [200, 200, 200, 200, 404, 401, 401, 422, 200, 200, 404]

    entries = all_entries(url)[before:]
    seen = [(e.actor, e.path, e.status_code, e.outcome, e.rows, e.feed) for e in entries]
    assert seen == [  # in the order sent: first_page went out first, /healthz is not audited
        ("district", f"{RECORDS}?limit", 200, "ok", 3, FEED),
        ("district", "/v1/feeds", 200, "ok", None, None),
        ("district", f"{RECORDS}?cursor&limit", 200, "ok", 3, FEED),
        ("district", f"{RECORDS}?format", 200, "ok", 7, FEED),
        ("open_data", f"/v1/feeds/{FEED}", 404, "not_found", None, FEED),
        ("anonymous", "/v1/feeds", 401, "unauthorised", None, None),
        ("anonymous", "/v1/feeds", 401, "unauthorised", None, None),
        ("district", f"{RECORDS}?limit", 422, "invalid_request", None, FEED),
        ("anonymous", "/.well-known/jwks.json", 200, "ok", None, None),
        ("district", "/v1/nothing-here", 404, "not_found", None, None),
    ]
    assert {e.method for e in entries} == {"GET"}
    assert all(e.policy_fingerprint for e in entries if e.actor == "district" and e.status_code == 200)
    assert '"partitions":[{' in (entries[0].detail or "") and '"rows":3' in (entries[0].detail or "")
    details = [json.loads(e.detail or "{}") for e in entries]
    assert [d["reason"] for d, e in zip(details, entries, strict=True) if e.status_code == 401] == [
        "unsigned",
        "replay",
    ]
    # What was served, field by field, and the digest of the very body the consumer received.
    assert details[0]["fields"] == FLOW_FIELDS + FLOW_MORE
    assert details[0]["format"] == "ndjson"
    assert first_page.headers["Content-Digest"] == details[0]["response_digest"]
    assert all(d["response_digest"].startswith("sha-256=:") for d in details)

    with session_scope(url) as session:
        assert verify_chain(session) == []

    # Nothing the requests carried (signatures, nonces, key ids, cursor values) was written down.
    secrets = {cursor}
    for request in requests_made:
        for name in ("Signature", "Signature-Input"):
            value = request.headers.get(name, "")
            secrets |= {part for part in value.replace('"', " ").replace(";", " ").split() if len(part) > 12}
    written = " ".join(str(entry_fields(e)) for e in entries) + caplog.text
    assert [s for s in secrets if s in written] == []


def test_nothing_is_served_when_the_audit_entry_cannot_be_written(fresh_hub: LiveHub) -> None:
    with engine_for(fresh_hub.settings.control_url).begin() as connection:
        connection.execute(text("ALTER TABLE audit_log RENAME TO audit_log_gone"))
    response = send(fresh_hub.signed(RECORDS, fresh_hub.identities["district"]))
    verify_response(response, fresh_hub.jwks)
    assert (response.status_code, response.json()) == (503, {"detail": "audit log unavailable"})
    assert "music-square" not in response.text


# --- the chain itself, on both databases ---------------------------------------------------


@pytest.fixture
def audit_db(control_url: str) -> str:
    """An empty, migrated control database: SQLite, and PostgreSQL where the server runs
    (`control_url` of tests/conftest.py makes and drops a throwaway database)."""
    migrate(control_url)
    return control_url


def append_requests(url: str, count: int) -> None:
    """`count` entries, each in its own transaction, as the API writes them."""
    for n in range(count):
        with session_scope(url) as session:
            append_audit(
                session,
                actor="district",
                action="request",
                outcome="ok",
                method="GET",
                path=f"{RECORDS}?cursor&limit",
                feed=FEED,
                status_code=200,
                rows=n,
                policy_fingerprint="sha256:test",
                detail={"partitions": [{"seq": n, "partition": "day=2026-11-20", "version": 1}]},
            )


def problems_of(url: str) -> list[str]:
    with session_scope(url) as session:
        return verify_chain(session)


def test_intact_chain_verifies(audit_db: str) -> None:
    assert problems_of(audit_db) == []  # empty
    append_requests(audit_db, 5)
    assert problems_of(audit_db) == []
    entries = all_entries(audit_db)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.entry_hash for earlier, later in pairwise(entries))


def _edit(session: Session) -> None:
    session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(rows=999))


def _edit_and_rehash(session: Session) -> None:
    entry = session.get(AuditEntry, 3)
    assert entry is not None
    entry.actor = "someone_else"
    entry.entry_hash = entry_hash(entry.prev_hash, entry)


def _delete_middle(session: Session) -> None:
    session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))


def _delete_tail(session: Session) -> None:
    session.execute(delete(AuditEntry).where(AuditEntry.seq == 5))


def _reorder(session: Session) -> None:
    for old, new in ((2, -2), (3, 2), (-2, 3)):
        session.execute(update(AuditEntry).where(AuditEntry.seq == old).values(seq=new))


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        # The product's verifier (warehouse.audit.verify_session, issue 15: one verifier) names
        # what was done, where the tests-only twin it replaced said only which link broke.
        (_edit, ["entry 3 was edited"]),
        (_edit_and_rehash, ["entry 3 was edited and re-hashed"]),
        (_delete_middle, ["entries 3..3 were deleted"]),
        (_delete_tail, ["entries 5..5 were deleted from the end"]),
        (_reorder, ["the entry stored as 2 was written as 3", "the entry stored as 3 was written as 2"]),
    ],
    ids=["edited", "edited-and-rehashed", "deleted", "tail-cut", "reordered"],
)
def test_tampering_is_detected(audit_db: str, tamper: Callable[[Session], None], expected: list[str]) -> None:
    append_requests(audit_db, 5)
    with session_scope(audit_db) as session:
        tamper(session)
    problems = problems_of(audit_db)
    for fragment in expected:
        assert any(fragment in problem for problem in problems), (fragment, problems)


def test_concurrent_appends_keep_one_chain(audit_db: str) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            append_requests(audit_db, 10)
        except BaseException as exc:  # surfaced below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [e.seq for e in all_entries(audit_db)] == list(range(1, 41))
    assert problems_of(audit_db) == []


def test_a_lost_head_row_is_rebuilt_from_the_chain(audit_db: str) -> None:
    append_requests(audit_db, 3)
    with session_scope(audit_db) as session:
        session.execute(delete(AuditHead))
    assert problems_of(audit_db) == ["the audit head row is missing"]
    append_requests(audit_db, 2)
    assert problems_of(audit_db) == []
    assert [e.seq for e in all_entries(audit_db)] == [1, 2, 3, 4, 5]
