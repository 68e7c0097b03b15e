"""Run benchmarks and update their sections of bench/RESULTS.md.

    .venv/bin/python -m bench                    # all of them
    .venv/bin/python -m bench pipeline_week      # only some; the other sections are kept

Each benchmark is a module of this package with `run()` and `report(result) -> str`, and
measures the hub against a baseline in the same run. Add new ones to BENCHMARKS.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BENCHMARKS: dict[str, str] = {
    "pipeline_week": "Pipeline throughput, a simulated week (issue 2)",
    "demo_time": "Demo: the whole community's batch day, and the live hub's CPU and memory (issues 2, 18)",
    "pseudonymise": "Pseudonymisation and free-text scrubbing against Presidio (issue 4)",
    "collector": "MQTT collector, broker to landed batches at QoS 1 (issue 3)",
    "community_day": "A community-day of every source stream, ingested (issue 3)",
    "api_throughput": "Export API: signed requests and streamed records against a static-file floor (issue 6)",
    "catalog_quality": "Catalog with each feed's quality status, against the catalog without it (issue 5)",
    "relay_latency": "Alarm relay: device → district latency, durable outbox, against the bare broker (issue 7)",
    "relay_latency_five": "Alarm relay: p99 in five consecutive runs, first second included (issue 17)",
    "relay_wal": "Alarm relay: peak SQLite WAL size under a sustained burst, bounded against unbounded (issue 17)",
    "relay_cpu": "Alarm relay: CPU per alarm of its worker and group commit, against its signatures (issue 7)",
    "scheduler_day": "A community-day through the real Airflow scheduler, 1 to N communities (issues 9, 21)",
    "feeds_day": "The feed catalog: a community-day from staging to every feed for every consumer (issue 5)",
    "duckdb_encryption": "DuckDB database encryption for staging, against a plain file (issue 16)",
    "viid": "GA/T 1400 cascade: pass extracted → acknowledged by the upper VIID platform (issue 20)",
    "seal": "Sealing to a consumer: RFC 9180 HPKE against cryptography's HPKE and the bare X25519 floor (issue 19)",
    "inbox": "Carrier IoT inbox: acknowledgement latency at 500 pushes/s, durable, against a bare HTTP 200 (issue 20)",
    "scrub_recall": "Free-text scrubbing: recall per kind on texts written by hand as residents write (issue 16)",
    "ngsi_push": "NGSI-LD push: published feeds into the city brain's broker, against a bare HTTP client (issue 20)",
    "district_day": "A district-day: every community's feeds into the district's Iceberg lake, exactly once (issue 21)",
    "window_costs": "What a window costs: CPU per stage of 100-row windows, rows/s and memory of 1M (issue 21)",
}
HEADER = (
    "# Benchmark results\n\nWritten by `.venv/bin/python -m bench` (also `make bench`, `neuron bench`) on the "
    "development machine (2 cores, 24 GiB). Each benchmark compares the hub with a baseline measured in the "
    "same run. A section is rewritten only when its benchmark runs again.\n"
)


def _sections(text: str) -> dict[str, str]:
    found = re.findall(r"<!-- bench:(\w+) -->\n(.*?)<!-- /bench -->", text, flags=re.S)
    return dict(found)


def main(names: list[str]) -> None:
    """Run the named benchmarks (all by default) and rewrite their sections."""
    chosen = names or list(BENCHMARKS)
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        print(f"running bench.{name} …", flush=True)
        body = module.report(module.run())
        print(body, flush=True)
        _write_section(name, f"## {BENCHMARKS[name]}\n\nCommand: `.venv/bin/python -m bench {name}`\n\n{body}\n")


def _write_section(name: str, section: str) -> None:
    """Rewrite one section, re-reading the file first: benchmarks run for minutes, and another
    run may have written its own section meanwhile."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    sections = _sections(text)
    markers = set(re.findall(r"<!-- bench:(\w+) -->", text))
    if markers - set(sections) or set(sections) - set(BENCHMARKS):
        # Never drop a section silently (a hand edit that broke a marker, or an unknown name).
        lost = sorted((markers - set(sections)) | (set(sections) - set(BENCHMARKS)))
        raise SystemExit(f"bench/RESULTS.md: section(s) {', '.join(lost)} unreadable or unknown; fix the markers")
    sections[name] = section
    ordered = [f"<!-- bench:{n} -->\n{sections[n]}<!-- /bench -->\n" for n in BENCHMARKS if n in sections]
    RESULTS.write_text(HEADER + "\n" + "\n".join(ordered), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
