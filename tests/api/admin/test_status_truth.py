"""Status that tells the truth (issue 19, item 2): a hub with streams never loaded, one stale
and one failing shows each as such — "not yet connected", "stale", "failing" — on the
console's overview and quality pages, in `neuron status` and in the consumers' catalog, and
the day's counts and the stated period are the same everywhere."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.app import create_console_app
from neuron.cli import app
from tests.api.admin.console import ADMIN, PASSWORDS, Browser
from tests.api.hub import LiveHub, ServerThread, running_hub, send
from tests.api.lake import FEED
from warehouse.control import session_scope
from warehouse.models import LoadRecord
from warehouse.quality_ledger import keep_batch_quality

DAY = "2026-11-22"
# The end of DAY in Shanghai (24:00 local): the instant every view is asked about.
END_OF_DAY = datetime(2026, 11, 22, 16, tzinfo=UTC)
PERIOD = f"{DAY} 00:00–24:00 Asia/Shanghai"
STALE, FAILING, FRESH = "vehicle_passes", "door_access", "environment"  # the flow feed's source is stale


@dataclass
class StatusHub:
    hub: LiveHub
    console: Browser
    home: Path


def batch(hub: LiveHub, stream: str, end: datetime, rows: int, rejected: bool = False) -> None:
    """One hourly window of `stream` ending at `end`, validated (and loaded unless rejected)."""
    with session_scope(hub.settings.control_url) as session:
        record = LoadRecord(
            batch_id=f"{stream}/{end.isoformat()}", stream=stream, community_id=hub.settings.community_id,
            window_start=end - timedelta(hours=1), window_end=end, started_at=end,
            status="rejected" if rejected else "loaded",
            rows_extracted=rows, rows_loaded=0 if rejected else rows - 1, rows_quarantined=1,
        )  # fmt: skip
        session.add(record)
        summary = {
            "rows_in": rows, "rows_good": rows - 1, "rows_quarantined": 1, "duplicates_dropped": 0,
            "quarantined_by_reason": {}, "expectations": [], "rejected": rejected,
        }  # fmt: skip
        keep_batch_quality(session, record, f"{stream}.v1", summary, at=end)


@pytest.fixture(scope="module")
def status_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StatusHub]:
    from api.admin.accounts import add_admin

    home = tmp_path_factory.mktemp("status")
    with running_hub(home) as hub:
        hub.app.state.now = lambda: END_OF_DAY
        # Stale: its last window ended at 12:00 local, twelve hourly windows before the day's end.
        for hour in (3, 4):
            batch(hub, STALE, datetime(2026, 11, 22, hour, tzinfo=UTC), 100)
        # Failing: loaded earlier, but its newest batch was rejected.
        batch(hub, FAILING, datetime(2026, 11, 22, 14, tzinfo=UTC), 50)
        batch(hub, FAILING, datetime(2026, 11, 22, 15, tzinfo=UTC), 40, rejected=True)
        # Fresh: its last window closed at 24:00.
        batch(hub, FRESH, END_OF_DAY, 200)
        # Yesterday's window (local): in no count of DAY.
        batch(hub, FRESH, datetime(2026, 11, 21, 15, tzinfo=UTC), 999)
        add_admin(hub.settings.control_url, ADMIN, "admin", PASSWORDS[ADMIN])
        with ServerThread(create_console_app(hub.settings, now=lambda: END_OF_DAY)) as console:
            browser = Browser(console.url + "/admin")
            browser.sign_in(ADMIN)
            yield StatusHub(hub, browser, hub.settings.home)
            browser.close()


@pytest.fixture(scope="module")
def cli_status(status_hub: StatusHub) -> dict[str, object]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("NEURON_")}
    for name in saved:
        del os.environ[name]
    os.environ["NEURON_HOME"] = str(status_hub.home)
    try:
        result = CliRunner().invoke(app, ["status", "--day", DAY, "--json"])
        text = CliRunner().invoke(app, ["status", "--day", DAY])
    finally:
        del os.environ["NEURON_HOME"]
        os.environ.update(saved)
    assert result.exit_code == 0, result.output
    assert text.exit_code == 0 and PERIOD in text.output and "not yet connected" in text.output
    loaded: dict[str, object] = json.loads(result.output)
    return loaded


def test_the_cli_tells_not_connected_stale_and_failing_apart(cli_status: dict[str, object]) -> None:
    by_stream = cli_status["by_stream"]
    assert isinstance(by_stream, dict)
    assert (by_stream[STALE], by_stream[FAILING], by_stream[FRESH]) == ("stale", "fail", "ok")
    never = [s for s, state in by_stream.items() if s not in (STALE, FAILING, FRESH)]
    assert never and {by_stream[s] for s in never} == {"not_connected"}
    assert cli_status["period"] == PERIOD
    # 100 + 100 + 50 + 40 + 200 validated rows in the day; 99 + 99 + 49 + 0 + 199 loaded.
    assert cli_status["totals"] == {"rows_in": 490, "rows_loaded": 446, "rows_quarantined": 5}


def test_the_console_shows_the_same_states_counts_and_period(
    status_hub: StatusHub, cli_status: dict[str, object]
) -> None:
    overview = status_hub.console.get("/").text
    assert PERIOD in overview
    assert re.search(r'id="rows-loaded-today">446<', overview)
    streams = cli_status["streams"]
    assert isinstance(streams, dict)
    for state, count in streams.items():
        if count:
            assert re.search(rf'data-state="{state}">[^<]*<strong>{count}</strong>', overview), state
    assert "尚未接入" in overview and "数据过时" in overview and "异常" in overview
    quality = status_hub.console.get("/quality").text
    assert PERIOD in quality
    # The page names each stream by its title; the row keeps the stream's id (data-stream).
    rows = re.findall(r'<tr class="status-([a-z_]+)" data-stream="([a-z_]+)">', quality)
    assert dict((s, state) for state, s in rows) == cli_status["by_stream"]


def test_the_catalog_states_the_same_status_and_period(status_hub: StatusHub, cli_status: dict[str, object]) -> None:
    hub = status_hub.hub
    response = send(hub.signed("/v1/feeds", hub.identities["district"], created=END_OF_DAY))
    assert response.status_code == 200, response.text
    (entry,) = [f for f in response.json()["feeds"] if f["name"] == FEED]
    by_feed = cli_status["by_feed"]
    assert isinstance(by_feed, dict)
    assert entry["quality"]["status"] == by_feed[FEED] == "stale"
    assert entry["quality"]["period"] == PERIOD
