"""Determinism (issue 17, item 7): every mart gives the same bytes whatever order its staged
rows come in and however often it is rebuilt.

Each feed's staging fixtures (tests/warehouse/marts) are staged again with extra rows whose
readings, hours and areas carry two decimals (not exact in binary: a float sum of them
depends on the order it is added in), shuffled differently on each of three rebuilds; the
rows each feed would publish (its mart in the feed's total order) are written as the
publisher writes Parquet, and their SHA-256s must agree. The traffic feeds sum integers only
and have no fixture here.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import duckdb

from schemas.contract import load_contract
from schemas.feeds import load_feeds
from tests.warehouse.marts import fixtures_devices as dev
from tests.warehouse.marts import test_service_feeds as svc
from warehouse.marts import build_marts
from warehouse.publisher import parquet_bytes

CLONES = 12
# The float fields given two-decimal values in the clones, and their ranges.
FLOATS = {
    "pm25": (5, 150),
    "pm10": (10, 200),
    "noise_db": (30, 90),
    "temperature_c": (-5, 35),
    "humidity_pct": (20, 95),
    "energy_kwh": (0, 500),
    "hours": (0, 8),
    "area_m2": (40, 200),
}


def clones(stream: str, rows: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """`rows` plus copies under new primary keys with fresh two-decimal floats (same seed: same rows)."""
    keys = load_contract(stream).primary_key if stream != "alarm_lifecycle" else ["event_id"]
    out = list(rows)
    for n in range(CLONES):
        for row in rows:
            copy = dict(row)
            for key in keys:
                name = key if key in copy else f"{key}_token"
                if isinstance(copy.get(name), str):
                    copy[name] = f"{copy[name]}-c{n}"
            for name, (low, high) in FLOATS.items():
                if isinstance(copy.get(name), (int, float)):
                    copy[name] = round(rng.uniform(low, high), 2)
            out.append(copy)
    return out


def shuffled(rows: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    rows = list(rows)
    rng.shuffle(rows)
    return rows


def feed_digests(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    out = {}
    for feed in load_feeds().values():
        if feed.mart in tables:
            table = con.sql(f"SELECT * FROM {feed.mart} ORDER BY {', '.join(feed.order_by)}").to_arrow_table()
            out[feed.name] = hashlib.sha256(parquet_bytes(table)).hexdigest()
    return out


def busy_hour() -> list[dict[str, Any]]:
    """A station's busy hour: 3,000 readings whose exact means sit on a rounding boundary
    (pairs around 42.25, 61.65, 15.35 and 55.55), where a float sum's order decides the digit."""
    rng = random.Random(7)
    rows = []
    for n in range(1500):
        d = [round(rng.uniform(0, 10), 2) for _ in range(4)]
        for sign in (-1, 1):
            pm25, pm10, temperature, humidity = (
                round(c + sign * x, 2) for c, x in zip((42.25, 61.65, 15.35, 55.55), d, strict=True)
            )
            when = f"2026-11-20T03:{(2 * n + (sign > 0)) % 60:02d}:00"
            rows.append(dev.env(f"busy{n}{sign:+d}", "ENV02", when, pm25, pm10, 50, temperature, humidity))
    return rows


DEVICE_STAGES = [
    ("environment", "w1", dev.ENVIRONMENT),
    ("environment", "busy", busy_hour()),
    ("environment", "w2", dev.ENVIRONMENT_REDELIVERED),
    ("streetlights", "w1", dev.STREETLIGHTS),
    ("manhole_covers", "w1", dev.MANHOLE_COVERS),
    ("manhole_covers", "w2", dev.MANHOLE_COVERS_REDELIVERED),
    ("elderly_care", "w1", dev.ELDERLY_CARE),
    ("platform_consent", "w1", dev.PLATFORM_CONSENT),
    ("platform_consent", "w2", dev.PLATFORM_CONSENT_WITHDRAWN),
    ("alarm_lifecycle", "w1", dev.ALARM_EVENTS),
    ("alarm_lifecycle", "w2", dev.ALARM_EVENTS_RECORDED_TWICE),
]
SERVICE_STAGES = [
    ("door_access", svc.DOOR),
    ("platform_households", svc.HOUSEHOLDS),
    ("platform_fee_payments", svc.PAYMENTS),
    ("parking_charges", svc.CHARGES),
    ("platform_repairs", svc.REPAIRS),
    ("platform_volunteers", svc.VOLUNTEERS),
    ("platform_votes", svc.BALLOTS),
]


def build(hub: Any, run: int) -> dict[str, str]:
    """Stage every fixture (with its clones, the same on every run) in a new order, build the marts."""
    order = random.Random(1000 + run)
    settings = hub.model_copy(update={"warehouse_path": Path(f"var/determinism-{run}.duckdb")})
    settings.__dict__.pop("warehouse_file", None)  # a cached property, copied with the rest
    assert settings.warehouse_file.name == f"determinism-{run}.duckdb"
    for stream, batch, rows in DEVICE_STAGES:
        extra = rows if batch == "busy" else clones(stream, rows, random.Random(stream + batch))
        dev.stage(settings, stream, batch, shuffled(extra, order))
    with duckdb.connect(str(settings.warehouse_file)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET threads = {1 + run % 2}")  # one thread, then two: no difference either
        for stream, rows in SERVICE_STAGES:
            svc.stage(con, stream, shuffled(clones(stream, rows, random.Random(stream)), order))
        ran = build_marts(con)
        assert len(ran) >= 9, ran
        return feed_digests(con)


def test_every_feed_is_byte_identical_over_three_shuffled_rebuilds(tmp_path: Path) -> None:
    hub = dev.new_hub(tmp_path / "hub")
    runs = [build(hub, run) for run in range(3)]
    assert len(runs[0]) >= 9, sorted(runs[0])
    differing = sorted(feed for feed in runs[0] if len({r[feed] for r in runs}) > 1)
    assert differing == []
