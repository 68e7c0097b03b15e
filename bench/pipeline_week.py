"""Rows per second through extract → validate → de-identify → load → marts → publish, for a
simulated week of vehicle passes, against the floor of merely fetching the same pages from
the vendor API (HTTP + JSON, no processing) in the same run.

    .venv/bin/python -m bench.pipeline_week [--days 7]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests

import pipeline
from kernel.settings import REPO_ROOT, HttpSource, Settings
from privacy.keys import init_keys
from simulator.parking import ParkingSimulator
from simulator.server import start_parking_api
from warehouse.migrations import migrate

TOKEN = "bench"
FIRST_DAY = date(2026, 11, 16)


def fetch_only(url: str, start: Any, end: Any) -> int:
    """The floor: page through the window and parse the JSON, nothing else."""
    rows, params = 0, {"updated_since": start.isoformat(), "updated_until": end.isoformat(), "page_size": 200}
    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {TOKEN}"
        while True:
            body = s.get(url + "/api/v2/vehicle-passes", params=params, timeout=30).json()
            rows += len(body["data"])
            if not body.get("next_page_token"):
                return rows
            params = {**params, "page_token": body["next_page_token"]}


def run(days: int = 7) -> dict[str, Any]:
    """Measure both; returns the figures."""
    sim = ParkingSimulator(seed=7)
    for i in range(-1, days):  # generate up front: the simulator's own cost is not the hub's
        sim.passes_for_day(FIRST_DAY + timedelta(days=i))
    stages: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp, start_parking_api(sim, token=TOKEN) as api:
        settings = Settings(
            home=Path(tmp),
            state_dir=Path("var"),
            lake_dir=Path("lake"),
            control_db_url="",
            master_secret=None,
            policies_dir=REPO_ROOT / "config" / "policies",
            parking=HttpSource(base_url=api.url, token=TOKEN),
        )
        init_keys(settings)
        migrate(settings.control_url)
        windows = [pipeline.local_day_window(settings, FIRST_DAY + timedelta(days=i)) for i in range(days)]
        # Warm-up outside the clock: GX's import (~5 s) is paid once per worker process.
        from schemas.contract import load_contract
        from schemas.validate import _gx_validation

        _gx_validation(load_contract("vehicle_passes"))
        t0 = time.perf_counter()
        fetched = sum(fetch_only(api.url, s, e) for s, e in windows)
        floor = time.perf_counter() - t0
        rows = 0
        t0 = time.perf_counter()
        for start, end in windows:
            t = time.perf_counter()
            batch = pipeline.extract(settings, "vehicle_passes", start, end)
            stages["extract + land"] += time.perf_counter() - t
            t = time.perf_counter()
            rows += pipeline.validate(settings, batch)["rows_in"]
            stages["validate + de-identify"] += time.perf_counter() - t
            t = time.perf_counter()
            touched = pipeline.load(settings, batch)
            stages["load"] += time.perf_counter() - t
            t = time.perf_counter()
            pipeline.build(settings)
            stages["marts"] += time.perf_counter() - t
            t = time.perf_counter()
            pipeline.publish(settings, touched)
            stages["publish"] += time.perf_counter() - t
        total = time.perf_counter() - t0
    return {
        "days": days,
        "rows": rows,
        "fetched": fetched,
        "pipeline_s": total,
        "floor_s": floor,
        "stages": dict(stages),
    }


def report(r: dict[str, Any]) -> str:
    """The figures as Markdown."""
    lines = [
        f"- {r['days']} simulated days, {r['rows']:,} passes (vendor pages included duplicates and faults)",
        f"- hub, extract → publish: {r['pipeline_s']:.2f} s = **{r['rows'] / r['pipeline_s']:,.0f} rows/s**",
        f"- floor, fetching the same pages only: {r['floor_s']:.2f} s = {r['fetched'] / r['floor_s']:,.0f} rows/s",
        f"- ratio hub / floor: **{r['pipeline_s'] / r['floor_s']:.1f}×** the time of the fetch alone",
        "- per stage: " + ", ".join(f"{k} {v:.2f} s" for k, v in r["stages"].items()),
        "- where it goes: validation is mostly Great Expectations' fixed cost per run (about 0.2 s per batch,"
        " whatever its size: cProfile shows its metric-graph building); casts, pseudonyms and de-duplication"
        " are vectorised Arrow and take milliseconds",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=7)
    print(report(run(parser.parse_args().days)))
