"""`neuron demo`: the batch day's wall time per stage, and the live hub's steady CPU and memory.

Batch: `neuron demo --no-serve` from a cold process — every simulated system, the device day
through the collector and the relay, 23 ingest DAG runs and 11 publish DAG runs through
Airflow — against the floor of one day of one stream through `neuron ingest` without
Airflow (the hub's fixed cost per window), in the same run.

Live: `neuron demo` serving (`neuron up`: Airflow's scheduler, DAG processor and API server,
the export API, the collector, the relay; the simulator in real time in the demo's own
process, the consumers' brokers beside it). Once every service is healthy, the whole
process tree is sampled every 10 s for `LIVE_MINUTES`: CPU as the growth of every process's
utime+stime (+ the waited-for children's, so finished task processes count), memory as
the sum of PSS (/proc/<pid>/smaps_rollup: shared pages split between the processes sharing
them, so the sum is what the tree really holds). Then Ctrl-C (SIGINT), as a user stops it.

    .venv/bin/python -m bench demo_time          (ports 21080-21083)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DAY = "2026-11-20"
LIVE_MINUTES = float(os.environ.get("NEURON_BENCH_LIVE_MINUTES", "4"))
PORTS = {"--port": 21080, "--airflow-port": 21081, "--console-port": 21082}
TICKS = os.sysconf("SC_CLK_TCK")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("NEURON_", "AIRFLOW"))}


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Seconds one command takes and its output; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def stages_of(output: str) -> dict[str, float]:
    """The demo's own `stages:` line: seconds per stage."""
    line = next((li for li in output.splitlines() if li.startswith("stages: ")), "")
    return {name: float(secs) for name, secs in re.findall(r"([a-zA-Z][a-zA-Z ]*?) (\d+) s", line)}


def batch(tmp: str) -> dict[str, Any]:
    env = _env()
    neuron = [sys.executable, "-m", "neuron.cli"]
    demo, output = timed([*neuron, "demo", "--no-serve", "--home", f"{tmp}/demo", "--day", DAY], env)
    # The floor: one day of one stream without Airflow (a simulator, init, one ingest window).
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
    plain, _ = timed([sys.executable, "-c", script], env)
    return {"demo_s": demo, "plain_s": plain, "stages": stages_of(output)}


def _tree(root: int) -> list[int]:
    """`root` and every descendant alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _sample(pids: list[int]) -> tuple[float, float]:
    """(CPU seconds so far, PSS MiB now) of the processes."""
    cpu = pss = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += sum(int(f) for f in fields[11:15]) / TICKS  # utime stime cutime cstime
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            pss += int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1)) / 1024  # type: ignore[union-attr]
        except (OSError, AttributeError, IndexError):
            continue  # it ended meanwhile
    return cpu, pss


def live(tmp: str) -> dict[str, Any]:
    """The serving demo's steady CPU and PSS once healthy."""
    cmd = [sys.executable, "-m", "neuron.cli", "demo", "--home", f"{tmp}/live"]
    for option, port in PORTS.items():
        cmd += [option, str(port)]
    proc = subprocess.Popen(
        cmd, env=_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines: list[str] = []
    healthy = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "all healthy" in line:
                healthy.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not healthy.wait(900):
            raise RuntimeError("the live demo never became healthy:\n" + "".join(lines[-60:]))
        time.sleep(30)  # past start-up: the DAG processor's first parse, the first scheduled runs
        samples = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < LIVE_MINUTES * 60:
            samples.append((time.monotonic(), *_sample(_tree(proc.pid))))
            time.sleep(10)
        processes = len(_tree(proc.pid))
        runs = sum("DagRun Finished" in li or "success" in li.lower() for li in lines)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    (t_first, cpu_first, _), (t_last, cpu_last, _) = samples[0], samples[-1]
    pss = [s[2] for s in samples]
    return {
        "cpu_pct": 100 * (cpu_last - cpu_first) / (t_last - t_first),
        "pss_mean_mib": sum(pss) / len(pss),
        "pss_max_mib": max(pss),
        "minutes": (t_last - t_first) / 60,
        "processes": processes,
        "log_lines_mentioning_success": runs,
        "stopped_exit": proc.returncode,
    }


def run() -> dict[str, Any]:
    """Both measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        result = batch(tmp)
        result["live"] = live(tmp)
    result["load"] = os.getloadavg()
    return result


def report(r: dict[str, Any]) -> str:
    """The figures as Markdown."""
    stages = ", ".join(f"{name} {secs:.0f} s" for name, secs in r["stages"].items())
    lv = r["live"]
    return "\n".join(
        [
            f"- `neuron demo --no-serve` (all 23 streams, 11 feeds to 3 consumers, cold start): **{r['demo_s']:.0f} s**"
            f" — {stages}",
            f"- floor: one day of one stream as one `neuron ingest --day` window, no Airflow: {r['plain_s']:.1f} s",
            f"- live hub (`neuron up` + simulator in real time), {lv['minutes']:.1f} min sampled once healthy,"
            f" {lv['processes']} processes: CPU **{lv['cpu_pct']:.0f}%** of one core (mean),"
            f" PSS **{lv['pss_mean_mib']:.0f} MiB** mean, {lv['pss_max_mib']:.0f} MiB max",
            f"- load average at the end: {', '.join(f'{x:.1f}' for x in r['load'])} (2 cores, shared with other"
            " agents' work: wall times are inflated accordingly)",
        ]
    )


if __name__ == "__main__":
    print(report(run()))
