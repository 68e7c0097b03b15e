"""Wall time of `neuron demo --no-serve` (one simulated day through Airflow), from a cold process,
against the same day through `neuron ingest` without Airflow (the hub's own work) in the same run.

    .venv/bin/python -m bench.demo_time
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DAY = "2026-11-20"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds one command takes; it must succeed."""
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - start


def run() -> dict[str, float]:
    """Both timings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEURON_", "AIRFLOW"))}
    neuron = [sys.executable, "-m", "neuron.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        demo = timed([*neuron, "demo", "--no-serve", "--home", f"{tmp}/demo", "--day", DAY], env)
        # The same day without Airflow: a simulator, init, and the pipeline in one process.
        script = (
            "import os, subprocess, sys\n"
            "from simulator.parking import ParkingSimulator\n"
            "from simulator.server import start_parking_api\n"
            "with start_parking_api(ParkingSimulator(seed=7), token='t') as api:\n"
            f"    env = dict(os.environ, NEURON_HOME='{tmp}/plain', NEURON_PARKING__BASE_URL=api.url,"
            " NEURON_PARKING__TOKEN='t')\n"
            "    subprocess.run([sys.executable, '-m', 'neuron.cli', 'init'], env=env, check=True)\n"
            f"    subprocess.run([sys.executable, '-m', 'neuron.cli', 'ingest', 'vehicle_passes', '--day', '{DAY}'],"
            " env=env, check=True)\n"
        )
        plain = timed([sys.executable, "-c", script], env)
    return {"demo_s": demo, "plain_s": plain}


def report(r: dict[str, float]) -> str:
    """The figures as Markdown."""
    return "\n".join(
        [
            f"- `neuron demo --no-serve` (24 hourly DAG runs through Airflow, cold start): **{r['demo_s']:.0f} s**",
            f"- the same day as one `neuron ingest --day` window, no Airflow: {r['plain_s']:.1f} s",
            f"- ratio: the demo takes {r['demo_s'] / r['plain_s']:.1f}× the plain run "
            "(Airflow metadata DB migration, 24 DAG runs of 5 tasks, GX import)",
        ]
    )


if __name__ == "__main__":
    print(report(run()))
