"""The console's re-send of NGSI-LD dead letters (issue 20): an admin's button, with the session's
CSRF token, marks the open letters for `neuron push` (the console never reaches a broker) and is
audited under the admin's name; auditors and forged forms are refused (test_authorisation.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select

from tests.api.admin.console import ADMIN, Browser, ConsoleHub
from warehouse.audit import dump_detail
from warehouse.control import session_scope
from warehouse.models import AuditEntry, NgsiLdDeadLetter


@pytest.fixture
def letter(console: ConsoleHub) -> Iterator[int]:
    """One open dead letter in the console hub's control database, removed after the test."""
    with session_scope(console.hub.settings.control_url) as session:
        row = NgsiLdDeadLetter(
            consumer="district", channel="upsert", feed="infrastructure.streetlight_assets",
            entity_id="urn:ngsi-ld:Streetlight:t:1", entity_type="Streetlight", error_type="InternalError",
            status=500, title="broker down", attempts=3, payload="{}", failed_at=datetime.now(UTC),
        )  # fmt: skip
        session.add(row)
        session.flush()
        made = row.id
    yield made
    with session_scope(console.hub.settings.control_url) as session:
        session.execute(delete(NgsiLdDeadLetter).where(NgsiLdDeadLetter.id == made))


def test_an_admin_asks_for_a_resend_and_it_is_audited(browser: Browser, console: ConsoleHub, letter: int) -> None:
    assert browser.sign_in(ADMIN).status_code == 303
    page = browser.get("/quality").text
    assert 'action="/admin/push/resend"' in page
    answer = browser.post("/push/resend", {"csrf_token": browser.csrf("/quality")})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/quality?done=resend"
    assert 'id="done"' in browser.get("/quality?done=resend").text
    with session_scope(console.hub.settings.control_url) as session:
        marked = session.get(NgsiLdDeadLetter, letter)
        assert marked is not None and marked.resend_requested_at is not None and marked.resolved_at is None
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "console_push_resend").order_by(AuditEntry.seq.desc())
        ).first()
    assert entry is not None and entry.actor == f"console:{ADMIN}" and entry.outcome == "requested"
    assert (dump_detail(entry.detail) or {})["dead_letters"] >= 1
