"""`neuron simulate` serves the whole of Music Square from one command: both vendor APIs (for
each of two communities), the platform DB, the door export in its drop folder, the devices on
a broker, on an accelerated clock; SIGTERM stops it with the ground truth of every
identifier kind written."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from simulator.truth import read_truth

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"names", "id_numbers", "phones", "addresses", "plates", "cards", "openids", "ballot_receipts", "wristbands"}


def _wait_line(proc: subprocess.Popen[str], needle: str, seen: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"{needle!r} never came:\n{''.join(seen)}")


def test_simulate_serves_every_system_and_leaves_the_truth_on_sigterm(tmp_path: Path) -> None:
    parking, intercom = 10090, 10091  # and 10092, 10093 for the second community (our range)
    truth = tmp_path / "truth.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuron.cli", "simulate", "--state", str(tmp_path / "sim"), "--port", str(parking),
         "--intercom-port", str(intercom), "--speed", "3600", "--truth", str(truth), "--communities", "2",
         "--token", "parking-token", "--intercom-token", "intercom-token"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    seen: list[str] = []
    try:
        _wait_line(proc, "Ctrl-C to stop", seen)
        text = "".join(seen)
        mqtt_port = int(text.split("mqtt://127.0.0.1:")[1].split(" ")[0])
        # The devices publish on their broker: a subscriber sees them arrive.
        got = threading.Event()
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-listener")
        sub.on_connect = lambda c, *_: c.subscribe("#", qos=1)
        sub.on_message = lambda *_: got.set()
        sub.connect("127.0.0.1", mqtt_port)
        sub.loop_start()
        assert got.wait(60), text
        sub.loop_stop()
        sub.disconnect()
        # Both vendor APIs answer with their own token.
        now = datetime.now(UTC)
        window = f"startTime={(now - timedelta(hours=2)).isoformat()}&endTime={now.isoformat()}".replace("+", "%2B")
        request = urllib.request.Request(
            f"http://127.0.0.1:{intercom}/openapi/v1/calls?{window}",
            headers={"Authorization": "Bearer intercom-token"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.loads(answer.read())["code"] == "0"
        since = (now - timedelta(hours=2)).isoformat().replace("+", "%2B")
        request = urllib.request.Request(
            f"http://127.0.0.1:{parking}/api/v2/vehicle-passes?updated_since={since}",
            headers={"Authorization": "Bearer parking-token"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        # The platform DB and yesterday's door export are there; the truth is already written.
        with sqlite3.connect(tmp_path / "sim" / "platform.db") as db:
            assert db.execute("SELECT count(*) FROM residents").fetchone()[0] > 0
        for community in ("music-square", "music-square-2"):
            exports = list((tmp_path / "sim" / "doors" / community / "incoming").glob("*.csv"))
            assert exports and exports[0].read_bytes().decode("gbk")
        with sqlite3.connect(tmp_path / "sim" / "platform.db") as db:
            assert db.execute("SELECT count(DISTINCT community_id) FROM residents").fetchone()[0] == 2
        # The second community's APIs are on the next ports.
        request = urllib.request.Request(
            f"http://127.0.0.1:{intercom + 2}/openapi/v1/calls?{window}",
            headers={"Authorization": "Bearer intercom-token"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.loads(answer.read())["code"] == "0"
        assert truth.exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    written = read_truth(truth)
    assert set(written) >= KINDS, sorted(written)
    assert all(written[kind] for kind in KINDS)
    assert truth.stat().st_mode & 0o777 == 0o600
