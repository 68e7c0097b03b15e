"""A hub with a console for the admin tests: two people (an admin and an auditor), exports
made by two consumers through the real API, a consent withdrawal, and a browser-like
client (a `requests` session that keeps cookies and reads CSRF tokens out of forms)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select

from api.admin.accounts import add_admin
from api.app import create_console_app
from tests.api.hub import LiveHub, ServerThread, running_hub, trusted
from tests.api.lake import FEED
from warehouse.consent import record_consent
from warehouse.control import session_scope
from warehouse.models import AuditEntry, LoadRecord, utcnow
from warehouse.quality_ledger import keep_batch_quality

ADMIN, AUDITOR = "alice", "bob"
PASSWORDS = {ADMIN: "correct horse battery", AUDITOR: "auditor's long secret"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class ConsoleHub:
    """The running hub, and what the exports it made returned to each consumer."""

    hub: LiveHub
    console_url: str
    received: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)
    exports: list[int] = field(default_factory=list)  # audit seqs of the exports, oldest first
    loaded_at: datetime | None = None  # when the fixture's loads (and, within moments, exports) happened

    @property
    def url(self) -> str:
        return self.console_url + "/admin"


class Browser:
    """A cookie-keeping client of the console, as a browser would use it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        # The API's port is HTTPS with the hub's certificate. Passed with each request: a session's
        # own `verify` gives way to REQUESTS_CA_BUNDLE when the environment sets it.
        self.verify = trusted(url)

    def get(self, path: str, **options: Any) -> requests.Response:
        options.setdefault("allow_redirects", False)
        return self.session.get(self.url + path, timeout=30, verify=self.verify, **options)

    def post(self, path: str, data: dict[str, str], **options: Any) -> requests.Response:
        options.setdefault("allow_redirects", False)
        return self.session.post(self.url + path, data=data, timeout=30, verify=self.verify, **options)

    def csrf(self, path: str = "/") -> str:
        """The CSRF token of a form on the page at `path`."""
        found = CSRF.search(self.get(path).text)
        assert found, f"no form on {path}"
        return found.group(1)

    def sign_in(self, name: str, password: str | None = None) -> requests.Response:
        token = self.csrf("/login")
        return self.post("/login", {"csrf_token": token, "name": name, "password": password or PASSWORDS[name]})

    def close(self) -> None:
        self.session.close()


@contextmanager
def console_hub(home: Path) -> Iterator[ConsoleHub]:
    """A hub with the console's people, some exports and one consent withdrawal."""
    with (
        running_hub(home) as hub,
        ServerThread(create_console_app(hub.settings, now=lambda: hub.app.state.now())) as at,
    ):
        for name, role in ((ADMIN, "admin"), (AUDITOR, "auditor")):
            add_admin(hub.settings.control_url, name, role, PASSWORDS[name])
        made = ConsoleHub(hub, at.url)
        for consumer, limit in (("district", 4), ("public_security", 6)):
            with hub.client(consumer) as client:
                first, cursor = client.records_ndjson(FEED, limit=limit)
                # The second page begins inside a partition: its offset is not in the log.
                second, _ = client.records_ndjson(FEED, cursor=cursor, limit=limit)
            made.received[consumer] = [first, second]
        with session_scope(hub.settings.control_url) as session:
            seqs = select(AuditEntry.seq).where(AuditEntry.feed == FEED).order_by(AuditEntry.seq)
            made.exports = list(session.execute(seqs).scalars())
            # Today's loads, as the pipeline's ledger records them.
            made.loaded_at = utcnow()
            for stream, loaded, quarantined in (("vehicle_passes", 120, 3), ("environment", 480, 0)):
                record = LoadRecord(
                    batch_id=f"{stream}-today", stream=stream, community_id="music-square",
                    window_start=made.loaded_at, window_end=made.loaded_at, started_at=made.loaded_at,
                    status="loaded",
                    rows_extracted=loaded + quarantined, rows_loaded=loaded, rows_quarantined=quarantined,
                )  # fmt: skip
                session.add(record)
                # And what validating it found: the day's counts every view shows come from here.
                summary = {
                    "rows_in": loaded + quarantined, "rows_good": loaded, "rows_quarantined": quarantined,
                    "duplicates_dropped": 0, "quarantined_by_reason": {}, "expectations": [], "rejected": False,
                }  # fmt: skip
                keep_batch_quality(session, record, f"{stream}.v1", summary, at=made.loaded_at)
        record_consent(hub.settings, "h" * 16, "smoke_gas", True, "platform")
        record_consent(hub.settings, "h" * 16, "smoke_gas", False, "platform")
        yield made
