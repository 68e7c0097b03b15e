"""The walking skeleton end to end: vendor → pipeline → lake → export API → `pull`, and not one
plate the simulator produced anywhere outside the encrypted vault."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import MetaData, select

import pipeline
from api.app import create_app
from api.client import HubClient
from api.consumers import register_consumer
from api.pull import pull_feed
from kernel.settings import Settings
from privacy.keys import HubKeys
from simulator.parking import ParkingSimulator
from tests.api.hub import ServerThread, public_pem
from tests.leaks import find_leaks, texts_of_lake, texts_of_warehouse
from warehouse.control import engine_for

FEED = "traffic.vehicle_flow_hourly"


def control_db_text(settings: Settings) -> str:
    """Every row of every control-database table, as text (the audit log included)."""
    meta = MetaData()
    meta.reflect(engine_for(settings.control_url))
    with engine_for(settings.control_url).connect() as conn:
        return json.dumps(
            {t: [list(map(str, r)) for r in conn.execute(select(meta.tables[t]))] for t in meta.tables},
            ensure_ascii=False,
        )


def test_no_plate_leaves_the_vault_on_the_way_to_a_consumer(
    hub: Settings,
    simulator: ParkingSimulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for day in (date(2026, 11, 20), date(2026, 11, 21)):
        pipeline.run_window(hub, "vehicle_passes", *pipeline.local_day_window(hub, day))
    private = Ed25519PrivateKey.generate()
    key_id = register_consumer(hub, "district", public_pem(private))
    served: list[str] = []
    jwks = HubKeys.load(hub).jwks()
    with ServerThread(create_app(hub)) as server, HubClient(server.url, key_id, private, jwks) as client:
        served.append(json.dumps(client.catalog(), ensure_ascii=False, default=str))
        served.append(json.dumps(client.feed(FEED), ensure_ascii=False, default=str))
        cursor = None
        while True:
            rows, next_cursor = client.records_ndjson(FEED, cursor=cursor, limit=500)
            served.append(json.dumps(rows, ensure_ascii=False, default=str))
            if next_cursor == cursor or not rows:
                break
            cursor = next_cursor
        result = pull_feed(client, FEED, tmp_path / "pulled")
    assert result.rows > 0 and any(len(page) > 2 for page in served)
    out = capfd.readouterr()
    texts = [
        *texts_of_warehouse(hub.warehouse_file),
        *texts_of_lake(hub.lake_path),
        *texts_of_lake(tmp_path / "pulled"),
        *(("api", page) for page in served),
        ("control db and audit log", control_db_text(hub)),
        ("logs", caplog.text),
        ("stdout", out.out),
        ("stderr", out.err),
    ]
    plates = simulator.all_plates()
    assert len(plates) > 500
    assert find_leaks(plates, texts) == []
