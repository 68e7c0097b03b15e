"""A district-day: every community's feeds gathered into the district's Iceberg lake
(`neuron district gather`, a process of its own), against the Iceberg write floor measured in
the same run; then exactly-once under injected failures.

The hubs: 3 real hubs (the export API under uvicorn on loopback) and the signed-feed server
(simulator/feed_server.py) playing the other communities, each with its own keys, signing
every response (RFC 9421) and every manifest (JWS). The district verifies everything.

- day 1: one day of every feed the district's policy grants (10 feeds) at 260 communities;
- replay: the same run again (nothing new): a no-op;
- day 2: the next day everywhere, and a second version of 10% of day 1's partitions;
- floor: the same day-1 partitions' Arrow tables appended with pyiceberg in commits of the same
  size (`commit_max_partitions`), no HTTP, no verification (what writing the lake costs by itself);
- failures: FAILURES (100) injected over rounds of 20 (one kill, 5 down, 4 slow, 10 tampered) at
  FAIL_COMMUNITIES communities: kill -9 of the district mid-commit (before or after the catalog
  update), hubs down, hubs slower than the timeout, tampered partitions (three kinds); after every
  round the tables hold only verified versions, none doubled; after a last clean round, exactly
  the newest version of everything.

    .venv/bin/python -m bench district_day
    NEURON_BENCH_DISTRICT_COMMUNITIES=100 .venv/bin/python -m bench district_day
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
COMMUNITIES = int(os.environ.get("NEURON_BENCH_DISTRICT_COMMUNITIES", "260"))
REAL = 3
FAIL_COMMUNITIES = 30
FAIL_FEEDS = ["env.air_quality_hourly", "safety.alarms", "services.fees_monthly"]
FAILURES = 100


def _toml(settings: Any) -> str:
    lines = [f'home = "{settings.home_path}"', f'catalog_uri = "{settings.catalog_uri}"', "workers = 8", ""]
    for hub in settings.hubs:
        lines += [
            "[[hubs]]",
            f'community_id = "{hub.community_id}"',
            f'subdistrict = "{hub.subdistrict}"',
            f'url = "{hub.url}"',
            f'jwks_file = "{hub.jwks_file}"',
            f"retries = {hub.retries}",
            f"timeout_seconds = {hub.timeout_seconds}",
            "",
        ]
    return "\n".join(lines)


def _run(args: list[str], config: Path | None = None) -> dict[str, Any]:
    """A district process; its wall, CPU (user + system, from wait4) and JSON report."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if config is not None:
        env["NEURON_DISTRICT_CONFIG"] = str(config)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    report = {}
    if out.strip().startswith(b"{"):
        report = json.loads(out)
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "code": proc.returncode, "report": report}


def _tables(settings: Any) -> dict[str, dict[str, int]]:
    from district.lake import Lake, ledger

    lake = Lake(settings)
    out = {}
    for feed, name in sorted(lake.feeds().items()):
        table = lake.catalog.load_table(f"{settings.namespace}.{name}")
        out[feed] = {
            "snapshots": len(table.snapshots()),
            "commits": len(
                {
                    (s.summary.additional_properties.get("neuron.run", "") if s.summary else "")
                    + str(s.parent_snapshot_id)
                    for s in table.snapshots()
                }
            ),
            "data_files": len(table.inspect.files()),
            "manifests": len(table.inspect.manifests()),
            "rows": table.scan().to_arrow().num_rows,
            "held": len(ledger(table)),
        }
    return out


def _floor(bench: Any, home: Path) -> dict[str, float]:
    """pyiceberg alone: the day's tables appended in commits of the same size, in this process."""
    from district.config import DistrictSettings
    from district.lake import Lake, Verified

    settings = DistrictSettings(home=home, hubs=[])
    lake = Lake(settings)
    expected = bench.expected()
    start, cpu = time.perf_counter(), time.process_time()
    size = settings.commit_max_partitions
    for feed, partitions in sorted(expected.items()):
        batch = [Verified(c, feed, k, v, "floor", rows) for (c, k), (v, rows) in partitions.items()]
        for first in range(0, len(batch), size):
            lake.commit(feed, batch[first : first + size])
    return {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}


def district_day(tmp: Path) -> dict[str, Any]:
    from tests.district.hubs import DAY, district_bench

    result: dict[str, Any] = {"communities": COMMUNITIES, "real": REAL}
    start = time.perf_counter()
    with district_bench(tmp / "day", played=COMMUNITIES - REAL, real=REAL, workers=8) as bench:
        result["setup_s"] = time.perf_counter() - start
        config = tmp / "district.toml"
        config.write_text(_toml(bench.settings))
        result["feeds"] = len(bench.expected())
        result["partitions"] = sum(len(p) for p in bench.expected().values())
        result["floor"] = _floor(bench, tmp / "floor")
        gather = ["-m", "neuron.cli", "district", "gather", "--json"]
        result["day1"] = _run(gather, config)
        result["day1_tables"] = _tables(bench.settings)
        result["replay"] = _run(gather, config)
        rng = random.Random(21)
        for community in bench.server.communities:
            bench.server.publish_day(community, DAY + timedelta(days=1))
            for feed in sorted(bench.server.granted):
                if rng.random() < 0.1:
                    bench.server.publish(community, feed, DAY)  # its next version
        for hub in bench.real.values():
            for feed in sorted(bench.server.granted):
                hub.publish(feed, DAY + timedelta(days=1))
        result["day2"] = _run(gather, config)
        result["day2_tables"] = _tables(bench.settings)
        result["import_s"] = _run(["-c", "import neuron.cli, pyiceberg.catalog.sql, district.ingest"])["wall_s"]
    return result


def _check(bench: Any, final: bool) -> dict[str, int]:
    """Held versions are published, untampered ones; rows once per held version; at the end, all."""
    from district.lake import Lake, ledger
    from simulator.feed_server import FAULTS

    del FAULTS
    lake = Lake(bench.settings)
    published: dict[tuple[str, str, str], dict[int, tuple[str, int]]] = {}
    for community, played in bench.server.communities.items():
        for v in played.versions:
            published.setdefault((community, v.feed, v.partition_key), {})[v.version] = (v.sha256, v.rows)
    problems: Counter[str] = Counter()
    for feed in FAIL_FEEDS:
        table = lake.load(feed)
        if table is None:
            continue
        held = ledger(table)
        rows = table.scan().to_arrow()
        time_column = "month" if "month" in rows.column_names else "day"
        counts = Counter(
            zip(
                rows.column("community_id").to_pylist(),
                [str(d) for d in rows.column(time_column).to_pylist()],
                strict=True,
            )
        )
        for (hub, key), h in held.items():
            versions = published.get((hub, feed, key), {})
            if versions.get(h.version, ("", 0))[0] != h.sha256:
                problems["held a version never published intact"] += 1
            community, moment = key.split("/")[0].split("=")[1], key.split("/")[1].split("=")[1]
            if counts.get((community, moment), 0) != versions.get(h.version, ("", -1))[1]:
                problems["rows doubled or missing"] += 1
        if len(counts) != len(held):
            problems["rows without a ledger entry"] += 1
        if final:
            for (community, f, key), versions in published.items():
                if (f == feed and held.get((community, key)) is None) or (
                    f == feed and held[(community, key)].version != max(versions)
                ):
                    problems["newest version missing"] += 1
    return dict(problems)


def failures(tmp: Path) -> dict[str, Any]:
    """FAILURES injected failures over rounds; the invariants checked after every round."""
    from district.ingest import gather
    from tests.district.hubs import DAY, district_bench

    rng = random.Random(100)
    injected: Counter[str] = Counter()
    rounds = []
    start = time.perf_counter()
    with district_bench(tmp / "fail", played=FAIL_COMMUNITIES, real=0, feeds=FAIL_FEEDS) as bench:
        settings_file = tmp / "fail.json"
        slow = {h.community_id: h.model_copy(update={"timeout_seconds": 2.0}) for h in bench.settings.hubs}
        settings = bench.settings.model_copy(update={"hubs": list(slow.values())})
        settings_file.write_text(settings.model_dump_json())
        day = DAY
        communities = sorted(bench.server.communities)
        while sum(injected.values()) < FAILURES:
            day += timedelta(days=1)
            for community in communities:  # a new day, and late versions of the day before
                for feed in FAIL_FEEDS:
                    bench.server.publish(community, feed, day)
                    if rng.random() < 0.3:  # a late record: the next version of the day before
                        bench.server.publish(community, feed, day - timedelta(days=1))
            for played in bench.server.communities.values():
                played.down, played.slow_seconds = False, 0.0
                played.faults.clear()
            victims = rng.sample(communities, 19)
            for community in victims[:5]:
                bench.server.communities[community].down = True
                injected["hub down"] += 1
            for community in victims[5:9]:
                bench.server.communities[community].slow_seconds = 3.0
                injected["hub slower than the timeout"] += 1
            for community in victims[9:19]:
                played = bench.server.communities[community]
                newest = [
                    v for v in played.versions if v.seq == max(x.seq for x in played.versions if x.feed == v.feed)
                ]
                target = rng.choice(newest)
                kind = rng.choice(["tamper_body", "tamper_manifest", "foreign_rows"])
                played.faults[(target.feed, target.partition_key)] = kind
                injected[f"tampered partition ({kind})"] += 1
            when = rng.choice(["before", "after"])
            crash = _run(["-m", "tests.district.crash", str(settings_file), str(rng.randint(1, len(FAIL_FEEDS))), when])
            injected[f"kill -9 mid-commit ({when} the catalog update)"] += 1
            report = gather(settings)
            rounds.append(
                {
                    "killed": crash["code"] == -signal.SIGKILL,
                    "refused": len(report.refusals),
                    "unavailable": len(report.unavailable),
                    "problems": _check(bench, final=False),
                }
            )
        for played in bench.server.communities.values():
            played.down, played.slow_seconds = False, 0.0
            played.faults.clear()
        # The hubs are back: run until no hub is unavailable (on a loaded machine a healthy hub may
        # still miss the timeout once), then everything must be there.
        catch_up = 0
        while catch_up < 5:
            catch_up += 1
            last = gather(settings)
            if not last.unavailable and not last.refusals:
                break
        final = _check(bench, final=True)
        replay = gather(settings).committed
        held = sum(len(bench.lake().held(feed)) for feed in FAIL_FEEDS)
    return {
        "wall_s": time.perf_counter() - start,
        "injected": dict(injected),
        "rounds": rounds,
        "final_problems": final,
        "replay_committed": replay,
        "held": held,
        "killed": sum(r["killed"] for r in rounds),
        "catch_up_runs": catch_up,
    }


def run() -> dict[str, Any]:
    os.environ["NEURON_DISTRICT_CONFIG"] = "/nonexistent/district.toml"
    with tempfile.TemporaryDirectory(prefix="district-bench-") as tmp:
        result = district_day(Path(tmp))
        result["failures"] = failures(Path(tmp))
        result["load_avg"] = os.getloadavg()
    return result


def report(r: dict[str, Any]) -> str:
    d1, d2, rp, fl = r["day1"], r["day2"], r["replay"], r["floor"]
    t1, t2 = r["day1_tables"], r["day2_tables"]
    f = r["failures"]
    lines = [
        f"- {r['communities']} communities ({r['real']} real hubs, {r['communities'] - r['real']} played by"
        f" `simulator/feed_server.py`, each its own keys), {r['feeds']} feeds (all the district's policy grants):"
        f" {r['partitions']:,} partition versions a day; setup (publishing them) {r['setup_s']:.0f} s, not counted",
        f"- **day 1: {d1['wall_s']:.1f} s wall, {d1['cpu_s']:.1f} s CPU** of the district process"
        f" (`neuron district gather`, 8 pull threads; goal < 600 s): {d1['report'].get('committed', 0):,} partition"
        f" versions verified and committed, {d1['report'].get('rows', 0):,} rows,"
        f" {d1['report'].get('commits', 0)} commits;"
        f" exit {d1['code']}",
        f"- floor, the same partitions appended by pyiceberg alone (commits of the same size, no HTTP, no"
        " verification):"
        f" {fl['wall_s']:.1f} s wall, {fl['cpu_s']:.1f} s CPU → the district costs"
        f" {d1['cpu_s'] / max(fl['cpu_s'], 1e-9):.1f}×"
        f" the floor's CPU (process start and imports: {r['import_s']:.1f} s of it)",
        f"- replay of day 1 (nothing new): {rp['wall_s']:.1f} s wall, {rp['cpu_s']:.1f} s CPU,"
        f" {rp['report'].get('committed', '?')} committed (the cursors had moved past everything; with the cursors"
        " deleted, every change is found in the tables' ledgers instead: tests/district/test_gather.py)",
        f"- day 2 (the next day everywhere plus a second version of ~10% of day 1): {d2['wall_s']:.1f} s wall,"
        f" {d2['cpu_s']:.1f} s CPU, {d2['report'].get('committed', 0):,} committed ({d2['report'].get('replaced', 0)}"
        f" superseding), {d2['report'].get('commits', 0)} commits",
        "",
        "| table | snapshots day 1 | data files day 1 | manifests day 1 | snapshots day 2 | data files day 2"
        " | manifests day 2 | rows day 2 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for feed in sorted(t2):
        a, b = t1.get(feed, {}), t2[feed]
        lines.append(
            f"| `{feed}` | {a.get('snapshots', 0)} | {a.get('data_files', 0)} | {a.get('manifests', 0)} |"
            f" {b['snapshots']} | {b['data_files']} | {b['manifests']} | {b['rows']:,} |"
        )
    lines += [
        "",
        "(A superseding commit is Iceberg's delete and append in one catalog update, so it shows as two snapshots.)",
        "",
        f"**Exactly once under {sum(f['injected'].values())} injected failures** ({FAIL_COMMUNITIES} communities,"
        f" {len(FAIL_FEEDS)} feeds, {len(f['rounds'])} rounds, {f['wall_s']:.0f} s):"
        + "".join(f" {n} × {k};" for k, n in sorted(f["injected"].items())),
        f"- the district was killed mid-commit in {f['killed']} of {len(f['rounds'])} rounds; after every round"
        f" the tables held only versions published intact, each once: problems found"
        f" {sum(sum(x['problems'].values()) for x in f['rounds'])}",
        f"- the hubs back ({f['catch_up_runs']} clean run(s) until none was unavailable): {f['held']} partitions"
        " held, newest versions all, problems"
        f" {sum(f['final_problems'].values())} {f['final_problems'] or ''}; a replay committed {f['replay_committed']}",
        f"- machine load average at start (shared by the team): {', '.join(f'{x:.1f}' for x in r['load_avg'])}",
    ]
    return "\n".join(lines)
