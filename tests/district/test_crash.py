"""Exactly once across a kill -9 of the district app in the middle of a commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from district.ingest import gather
from tests.district.hubs import assert_lake_holds, district_bench

REPO = Path(__file__).resolve().parents[2]
FEEDS = ["env.air_quality_hourly", "safety.alarms"]


@pytest.mark.slow  # a district process of its own per case
@pytest.mark.parametrize("when", ["before", "after"])
def test_killed_mid_commit_the_next_run_completes_without_doubles(tmp_path: Path, when: str) -> None:
    with district_bench(tmp_path, played=3, real=1, feeds=FEEDS) as bench:
        settings_file = tmp_path / "district.json"
        settings_file.write_text(bench.settings.model_dump_json())
        # Killed in the middle of the first table's commit (the chunk's first).
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, "-m", "tests.district.crash", str(settings_file), "1", when],
            cwd=REPO,
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
        report = gather(bench.settings)
        assert report.refusals == [] and report.unavailable == {}
        assert report.committed == (len(FEEDS) * 4 if when == "before" else len(FEEDS) * 4 - 4)
        assert_lake_holds(bench)
        assert gather(bench.settings).committed == 0
