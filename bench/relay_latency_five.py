"""Issue 17 item 9: the relay's latency in *every* run, not the best one — the default path (one
process, outbox fsync full, natural batching) at 200 and 1,000 alarms/s, first second included,
in five consecutive runs, each against the bare broker measured in the same run.

    .venv/bin/python -m bench relay_latency_five

Each run starts fresh brokers, a fresh hub and a fresh relay process (bench/relay_latency.py), so
every run pays its own start-up, as a restarted relay would.
"""

from __future__ import annotations

import os
from typing import Any

from bench import relay_latency

RUNS = 5
GOALS_MS = {200: 10.0, 1000: 20.0}


def run() -> dict[str, Any]:
    runs = []
    original = relay_latency.PATHS
    relay_latency.PATHS = (("full", 1, 0.0),)
    try:
        for _ in range(RUNS):
            runs.append(relay_latency.run()["rows"])
    finally:
        relay_latency.PATHS = original
    return {"runs": runs, "load_average": os.getloadavg()}


def report(result: dict[str, Any]) -> str:
    lines = [
        f"{RUNS} consecutive runs of `bench relay_latency`'s default path: one relay process, outbox fsync",
        f"full, natural batching, {relay_latency.SECONDS} s per rate, a fresh relay per rate (its first second",
        "included in p99). Goals: p99 < 10 ms at 200/s and < 20 ms at 1,000/s in every run, no loss.",
        "",
        "| run | alarms/s | bare p99 ms | relay p50 ms | relay p99 ms | p99 after 1 s | max ms "
        "| received / sent | goal |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    worst: dict[int, float] = {}
    verdicts = []
    for n, rows in enumerate(result["runs"], 1):
        bare = {r["rate"]: r for r in rows if r["path"] == "bare broker"}
        for r in rows:
            if r["path"] == "bare broker":
                continue
            ok = r["p99"] < GOALS_MS[r["rate"]] and r["received"] == r["sent"]
            verdicts.append(ok)
            worst[r["rate"]] = max(worst.get(r["rate"], 0.0), r["p99"])
            lines.append(
                f"| {n} | {r['rate']} | {bare[r['rate']]['p99']:.2f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                f"{r['p99_warm']:.2f} | {r['max']:.2f} | {r['received']} / {r['sent']} | {'met' if ok else 'NOT met'} |"
            )
    load = result["load_average"]
    lines += [
        "",
        f"Load average at the end (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, 2 cores.",
        "",
        *(
            f"- worst p99 over {RUNS} runs at {rate}/s: {ms:.1f} ms (goal < {GOALS_MS[rate]:.0f} ms)"
            for rate, ms in sorted(worst.items())
        ),
        f"- goal met in {sum(verdicts)} of {len(verdicts)} run×rate cells",
    ]
    return "\n".join(lines)
