"""What `neuron demo` hands a newcomer before the hub runs live: a console account whose
printed password signs in, and a pull per consumer with that consumer's own key id."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from api.admin.accounts import Lockout, check_password
from api.consumers import list_consumers
from privacy.keys import init_keys
from privacy.tls import ensure_certificate
from simulator.demo import DEMO_ADMIN, DEMO_PULLS, _demo_admin, _demo_consumer_key, _public_security_keys, _try_next
from tests.conftest import make_settings
from warehouse.migrations import migrate


def test_the_demo_makes_a_console_account_and_says_what_to_try(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_keys(settings)
    ensure_certificate(settings)  # the demo's API serves HTTPS
    migrate(settings.control_url)
    _demo_consumer_key(settings, tmp_path)
    _public_security_keys(settings, tmp_path)
    password = _demo_admin(settings)
    assert check_password(settings.control_url, DEMO_ADMIN, password, datetime.now(UTC), Lockout()) is not None

    out = io.StringIO()
    _try_next(Console(file=out, width=200), settings, 18700, 18080, tmp_path, password)
    text = out.getvalue()
    keys = {c.name: c.keys[0].key_id for c in list_consumers(settings)}
    for consumer, feed in DEMO_PULLS.items():
        assert f"neuron pull {feed} " in text and f"--key-id {keys[consumer]}" in text
        assert str(tmp_path / "consumer" / f"{consumer}.pem") in text
    # The console listens apart from the API (issue 17): its own port.
    assert f":{settings.api.console_port}/admin" in text and DEMO_ADMIN in text and password in text
    assert "neuron verify-ballot" in text and "http://127.0.0.1:18080" in text
