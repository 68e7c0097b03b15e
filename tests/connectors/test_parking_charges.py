"""System 1's parking charges over the parking vendor's API: derived from the exit passes,
refunds arriving the next day as a newer version, faults quarantined."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa

import pipeline
from connectors.registry import make_stream
from simulator.parking import Faults, ParkingSimulator
from simulator.parking_charges import charge_faults, charges_updated_between
from simulator.server import start_parking_api
from tests.conftest import TOKEN
from tests.connectors.hub_sources import hub_settings

CST = timezone(timedelta(hours=8))
DAY = date(2026, 11, 20)


def test_charges_are_the_visitors_paid_exits_read_through_the_pages(tmp_path: Path) -> None:
    sim = ParkingSimulator(seed=3, faults=Faults.none())
    with start_parking_api(sim, token=TOKEN) as api:
        settings = hub_settings(tmp_path, api.url)
        since, until = pipeline.local_day_window(settings, DAY)
        table = pa.Table.from_batches(list(make_stream("parking_charges", settings).extract(since, until)))
    expected = charges_updated_between(sim, since, until)
    assert table.column("charge_id").to_pylist() == [c["charge_id"] for c in expected]
    exits = {p["record_id"] for p in sim.passes_for_day(DAY) if p["direction"] == "out" and p["fee_fen"]}
    assert set(table.column("record_id").to_pylist()) - exits <= {
        c["record_id"] for c in expected if c["status"] == "refunded"
    }


def test_refunds_come_the_next_day_as_a_newer_version(tmp_path: Path) -> None:
    sim = ParkingSimulator(seed=3)
    with start_parking_api(sim, token=TOKEN) as api:
        settings = hub_settings(tmp_path, api.url)
        first = pipeline.run_window(settings, "parking_charges", *pipeline.local_day_window(settings, DAY))
        second = pipeline.run_window(
            settings, "parking_charges", *pipeline.local_day_window(settings, DAY + timedelta(days=1))
        )
    refunds = [k for k, v in charge_faults(sim, DAY).items() if v == "late_refund"]
    assert refunds and first["rows_quarantined"] > 0
    assert DAY.isoformat() in second["days"]  # the refund touches the day of the exit
    assert datetime(2026, 11, 21, tzinfo=CST) > datetime(2026, 11, 20, tzinfo=CST)
