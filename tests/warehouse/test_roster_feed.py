"""Issue 16: the roster is built from the platform's residents as they load, kept only
encrypted, and used by de-identification — so no resident's name in a repair request or a
circle post reaches staging (on today's main, save_roster has no caller: 14 names a day)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

import pipeline
from connectors.sql import SqlSource
from privacy.keys import HubKeys
from privacy.roster import load_roster
from schemas.contract import load_contract
from simulator.platform import PlatformSimulator
from tests.connectors.hub_sources import hub_settings
from warehouse.staging import staging_table, warehouse

DAY = date(2026, 11, 1)


@pytest.mark.slow  # a platform day through the pipeline (~30 s)
def test_residents_feed_the_encrypted_roster_and_no_name_reaches_staging(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'platform.db'}"
    sim = PlatformSimulator()
    sim.write_days(url, 1)
    settings = hub_settings(tmp_path / "hub", platform=SqlSource(url=url, batch_size=500))
    window = pipeline.local_day_window(settings, DAY)
    names = {r["name"] for r in sim.expected("residents", *window)}
    assert len(names) > 1000

    pipeline.run_window(settings, "platform_residents", *window)
    roster = load_roster(settings, HubKeys.load(settings))
    assert names <= roster
    stored = (settings.state_path / "roster.enc").read_bytes()
    assert not [n for n in list(names)[:200] if n.encode() in stored]  # encrypted at rest
    assert (settings.state_path / "roster.enc").stat().st_mode & 0o077 == 0

    texts = []
    for stream in ("platform_repairs", "platform_circle_posts"):
        pipeline.run_window(settings, stream, *window)
        contract = load_contract(stream)
        free = [f.name for f in contract.fields if f.privacy.value == "free_text"]
        with warehouse(settings.warehouse_file, read_only=True) as con:
            for column in free:
                texts += [row[0] for row in con.execute(f"SELECT {column} FROM {staging_table(contract)}").fetchall()]
    written = [t for t in sim.expected("repairs", *window)] + [p for p in sim.expected("circle_posts", *window)]
    assert written and texts
    named = [n for n in names if any(n in t for t in texts if t)]
    assert named == [], f"{len(named)} residents' names reached staging"
    assert any("[NAME]" in t for t in texts if t)  # there were names to hide
