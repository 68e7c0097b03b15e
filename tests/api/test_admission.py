"""Where a request is finally admitted: in its audit entry's transaction. The hub
authenticates from a per-process cache of consumer keys and a per-process memory of
nonces (api.auth, api.nonces); these tests show that neither weakens a revocation or a
replay: a revoked key is refused at once although it is cached, and a nonce is refused by
a second API process that never saw it (two app instances on one control database). The
audit writers of several processes take turns on SQLite and keep one valid chain."""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI
from sqlalchemy import select

from api.app import create_app
from api.audit import verify_chain
from api.audit_writer import AuditRecord, AuditWriter
from api.auth import RequestAuthenticator
from api.client import verify_response
from api.consumers import revoke_key
from api.middleware import Gate
from api.nonces import NonceReused, RecentNonces
from tests.api.hub import ROOMY, LiveHub, ServerThread, new_identity, send
from tests.api.lake import FEED
from warehouse.control import session_scope
from warehouse.migrations import migrate
from warehouse.models import AuditEntry

FEEDS = "/v1/feeds"


def _authenticator(app: FastAPI) -> RequestAuthenticator:
    """The gate's authenticator (the middleware stack exists once the app has served a request)."""
    layer: Any = app.middleware_stack
    while not isinstance(layer, Gate):
        layer = layer.app
    return layer.authenticator


def _last_entries(hub: LiveHub, count: int) -> list[tuple[str, int | None, str | None]]:
    with session_scope(hub.settings.control_url) as session:
        entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(count)).scalars()
        return [(e.actor, e.status_code, json.loads(e.detail or "{}").get("reason")) for e in reversed(list(entries))]


def test_a_cached_key_revoked_is_refused_at_once(fresh_hub: LiveHub) -> None:
    probe = new_identity(fresh_hub.settings, "district")
    assert send(fresh_hub.signed(FEEDS, probe)).status_code == 200
    keys = _authenticator(fresh_hub.app).keys
    assert keys.get(probe.key_id) is not None  # the next request takes the lean path
    revoke_key(fresh_hub.settings, probe.key_id)
    refused = send(fresh_hub.signed(FEEDS, probe))
    verify_response(refused, fresh_hub.jwks)
    assert (refused.status_code, refused.json()) == (401, {"detail": "unknown or revoked key"})
    assert keys.get(probe.key_id) is None  # dropped: later requests read the database again
    assert send(fresh_hub.signed(FEEDS, probe)).status_code == 401
    assert _last_entries(fresh_hub, 2) == [("anonymous", 401, "revoked_key")] * 2


def test_a_cached_key_revoked_gets_no_stream_either(fresh_hub: LiveHub) -> None:
    probe = new_identity(fresh_hub.settings, "district")
    changes = send(fresh_hub.signed(f"/v1/feeds/{FEED}/changes", probe))
    partition = changes.json()["changes"][0]["id"]
    revoke_key(fresh_hub.settings, probe.key_id)
    refused = send(fresh_hub.signed(f"/v1/feeds/{FEED}/partitions/{partition}", probe))
    verify_response(refused, fresh_hub.jwks)
    assert (refused.status_code, refused.json()) == (401, {"detail": "unknown or revoked key"})
    assert _last_entries(fresh_hub, 1) == [("anonymous", 401, "revoked_key")]


@pytest.fixture
def second_process(fresh_hub: LiveHub) -> Iterator[tuple[FastAPI, str]]:
    """Another API instance on the same control database, as a second uvicorn worker would be."""
    app = create_app(fresh_hub.settings, options=ROOMY)
    app.state.authenticator.also_known_as(fresh_hub.url.split("://")[1])  # both workers answer to one name
    with ServerThread(app) as server:
        yield app, server.url


def _send_to(url: str, request: requests.PreparedRequest) -> tuple[int, Any]:
    """Send a prepared request, exactly as signed (Host included), to another server."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        target = str(request.url).split("/", 3)[3]
        connection.putrequest(str(request.method), "/" + target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", str(request.url).split("/")[2])
        for name, value in request.headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


def test_a_replay_to_another_process_is_refused(fresh_hub: LiveHub, second_process: tuple[FastAPI, str]) -> None:
    other_app, other_url = second_process
    district = fresh_hub.identities["district"]
    assert _send_to(other_url, fresh_hub.signed(FEEDS, district))[0] == 200  # warms its key cache
    assert _authenticator(other_app).keys.get(district.key_id) is not None
    original = fresh_hub.signed(FEEDS, district)
    assert send(original).status_code == 200
    # The other process has not seen this nonce and holds the key: the lean path lets the
    # request through to its route, and the audit entry's claim on the nonce refuses it.
    assert _send_to(other_url, original) == (401, {"detail": "nonce already used"})
    assert _last_entries(fresh_hub, 2) == [("district", 200, None), ("anonymous", 401, "replay")]


def test_recent_nonces_refuse_a_replay_for_two_windows_only() -> None:
    window = timedelta(seconds=300)
    recent, now = RecentNonces(window, limit=4), datetime(2026, 11, 24, tzinfo=UTC)
    recent.claim("k", "n1", now)
    with pytest.raises(NonceReused):
        recent.claim("k", "n1", now + 2 * window - timedelta(seconds=1))
    recent.claim("other-key", "n1", now)  # nonces are per key
    recent.claim("k", "n1", now + 2 * window)  # by then `created` is outside the window anyway
    for n in range(10):  # past the limit the memory forgets (the store stays the authority)
        recent.claim("k", f"m{n}", now)
    assert len(recent._until) <= 4


def test_audit_writers_of_two_processes_take_turns_and_keep_one_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'control.db'}"
    migrate(url)
    first, second = AuditWriter(url), AuditWriter(url)  # two lock-file handles, as two workers hold
    with first._one_writer():
        probe = os.open(tmp_path / "control.audit-lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):  # the second writer would wait here, not poll
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(probe)

    def append(writer: AuditWriter, name: str) -> None:
        for batch in range(20):
            at = datetime.now(UTC)
            writer.write([AuditRecord(actor=name, action="request", outcome="ok", at=at) for _ in range(batch % 3 + 1)])

    threads = [threading.Thread(target=append, args=(w, f"worker-{n}")) for n, w in enumerate((first, second) * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with session_scope(url) as session:
        assert verify_chain(session) == []
        assert len(session.execute(select(AuditEntry)).scalars().all()) == 4 * sum(b % 3 + 1 for b in range(20))
