"""What `neuron demo` hands a newcomer before the hub runs live: a console account whose
printed password signs in, a pull per consumer (open data included) with that consumer's
own key id, how to watch the district's alarms arrive, how to see the cascade's notifications
the upper VIID platform acknowledged and the carrier inbox's pushes, and a real ballot receipt
to verify."""

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
from simulator.demo_day import upstream_brokers
from simulator.demo_peers import DemoPeers
from simulator.live import LiveCommunity, LiveOptions
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
    live = LiveCommunity(LiveOptions(state=tmp_path / "sim", devices=False, parking_port=0, intercom_port=0))
    live.start()
    try:
        with upstream_brokers(tmp_path, "putuo", "music-square") as upstreams, DemoPeers(tmp_path) as peers:
            console = Console(file=out, width=200)
            _try_next(console, settings, 18700, 18080, tmp_path, password, upstreams, live, peers)
    finally:
        live.close()
    text = out.getvalue()
    keys = {c.name: c.keys[0].key_id for c in list_consumers(settings)}
    for consumer, feed in DEMO_PULLS.items():
        assert f"neuron pull {feed} " in text and f"--key-id {keys[consumer]}" in text
        assert str(tmp_path / "consumer" / f"{consumer}.pem") in text
    # The console listens apart from the API (issue 17): its own port.
    assert f":{settings.api.console_port}/admin" in text and DEMO_ADMIN in text and password in text
    assert set(DEMO_PULLS) == {"district", "public_security", "open_data"}
    # The district's alarms: a subscriber line on its own broker, for its own topic.
    district = upstreams["district"]
    assert f"mosquitto_sub -h 127.0.0.1 -p {district.broker.port} -t 'citybrain/putuo/music-square/alarm/#'" in text
    # The GA/T 1400 cascade: the upper platform's record of what it acknowledged; the carrier
    # inbox's counts of what CTWing and OneNET pushed.
    assert f"tail -f {tmp_path / 'upstream' / 'viid.ndjson'}" in text
    assert f"curl -s http://127.0.0.1:{peers.inbox_port}/healthz" in text
    # A real receipt of the simulated day's ballots, with its choice and area.
    receipts = live.sites[0].platform.ground_truth()["ballot_receipts"]
    assert "neuron verify-ballot" in text and any(f"--receipt {r} " in text for r in receipts)
    assert "http://127.0.0.1:18080" in text
