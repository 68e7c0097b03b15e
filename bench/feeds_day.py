"""The feed catalog from staging (issue 5): a simulated community-day of every stream, already
in DuckDB staging, through every mart and every feed published for all three consumers
(district, public security, open data), against the floor of DuckDB writing the same staging
rows straight to Parquet; then the same for 10 communities.

Staging is prepared once and cached (not timed): every stream's conformance harness (its
simulated source over the real protocol) runs its first window through extract → validate →
de-identify → load, all hubs sharing one master secret so pseudonyms join across streams,
with public security's X25519 key registered before validation (plates and rooms are sealed
to it in staging). That is ~12k rows; a real day of a large community is denser, so the event
streams are densified in SQL to ~1M rows (each row copied with a distinct primary key and its
event time moved by a few seconds; the platform's dimension rows are kept as they are). The
10-community set replicates every staging row under 9 more community ids (SQL, not simulated).

Each measurement runs in a fresh child process on a fresh copy of the prepared hub; its peak
memory is the child's ru_maxrss. Stages are timed by wrapping the publisher's functions.

    .venv/bin/python -m bench feeds_day
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE_VERSION = "v1"
REPO = Path(__file__).resolve().parent.parent


def _inputs_digest() -> str:
    """The staging's inputs: a changed contract or policy (sealed columns) prepares it afresh."""
    files = sorted([*(REPO / "schemas" / "contracts").glob("*.yaml"), *(REPO / "config" / "policies").glob("*.yaml")])
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]


CACHE = Path(tempfile.gettempdir()) / f"neuron-bench-feeds_day-{CACHE_VERSION}-{_inputs_digest()}"
TARGET_ROWS = 1_000_000
COMMUNITIES = 10
MEMORY_LIMIT = "512MB"
REPEATS = 3
MASTER_SECRET = base64.b64encode(hashlib.sha256(b"neuron bench feeds_day").digest()).decode()
# Dimension and platform streams: a denser day means more events, not more households or motions.
KEEP_AS_IS = {
    "platform_households",
    "platform_residents",
    "platform_consent",
    "platform_votes",
    "platform_fee_payments",
    "platform_repairs",
    "platform_volunteers",
    "platform_notices",
    "platform_circle_posts",
}
EXTRA_IDS = {"alarm_id"}  # grouped lifecycles: a copy is another alarm, not an update of the same one


# --------------------------------------------------------------------------- preparation (not timed)


def _settings_with_secret(make: Callable[..., Any]) -> Callable[..., Any]:
    def make_settings(home: Path, *args: Any, **overrides: Any) -> Any:
        return make(home, *args, **{"master_secret": MASTER_SECRET, **overrides})

    return make_settings


def _register_public_security(settings: Any, signing_pem: bytes, sealing_pem: bytes) -> None:
    from api.consumers import register_consumer
    from warehouse.recipients import register_encryption_key

    register_consumer(settings, "public_security", signing_pem)
    register_encryption_key(settings, "public_security", sealing_pem)


def _public_pems() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    def pem(private: Any) -> bytes:
        return private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    return pem(Ed25519PrivateKey.generate()), pem(X25519PrivateKey.generate())


def _base_hub(home: Path) -> dict[str, Any]:
    """Every stream's first harness window loaded into one hub's staging; returns rows per stream."""
    import duckdb

    import pipeline
    import tests.connectors.conformance as conformance
    import tests.connectors.conformance_mqtt as conformance_mqtt
    import tests.connectors.hub_sources as hub_sources
    from kernel.errors import BatchRejected
    from privacy.keys import init_keys
    from tests.conftest import make_settings
    from warehouse.consent import apply_platform_consent
    from warehouse.control import session_scope
    from warehouse.migrations import migrate
    from warehouse.models import LoadRecord

    for module in (conformance, conformance_mqtt, hub_sources):
        module.make_settings = _settings_with_secret(make_settings)  # type: ignore[attr-defined]
    signing_pem, sealing_pem = _public_pems()
    hub = _settings_with_secret(make_settings)(home)
    init_keys(hub)
    migrate(hub.control_url)
    _register_public_security(hub, signing_pem, sealing_pem)
    (home / "consumers.json").write_text(
        json.dumps({"signing": signing_pem.decode(), "sealing": sealing_pem.decode()}), encoding="utf-8"
    )
    rows: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(conformance.HARNESSES):
            folder = Path(tmp) / name
            folder.mkdir()
            with conformance.HARNESSES[name](folder) as run:
                settings = run.settings
                assert settings.master_secret is not None, f"{name}: harness ignored the shared master secret"
                _register_public_security(settings, signing_pem, sealing_pem)
                start, end = run.windows[0]
                batch = pipeline.extract(settings, name, start, end)
                pipeline.validate(settings, batch)
                with contextlib.suppress(BatchRejected):  # a rejected window still loads its quarantine
                    pipeline.load(settings, batch)
                with duckdb.connect(str(hub.warehouse_file)) as con:
                    con.execute(f"ATTACH '{settings.warehouse_file}' AS src (READ_ONLY)")
                    con.execute(f"CREATE TABLE IF NOT EXISTS stg_{name} AS SELECT * FROM src.stg_{name} LIMIT 0")
                    con.execute(f"INSERT INTO stg_{name} BY NAME SELECT * FROM src.stg_{name}")
                    rows[name] = con.execute(f"SELECT count(*) FROM stg_{name}").fetchall()[0][0]
                    if name == "platform_consent":
                        apply_platform_consent(hub, con.sql("SELECT * FROM stg_platform_consent").to_arrow_table())
                    con.execute("DETACH src")
                with session_scope(hub.control_url) as session:
                    session.merge(
                        LoadRecord(
                            batch_id=batch,
                            stream=name,
                            community_id=hub.community_id,
                            window_start=start,
                            window_end=end,
                            status="loaded",
                            rows_extracted=rows[name],
                            rows_loaded=rows[name],
                        )
                    )
    return rows


def _densify(con: Any, factor: int) -> None:
    """Copy each event stream's rows `factor - 1` times: distinct keys, event times a few seconds on."""
    from schemas.contract import load_contract

    tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
    for table in sorted(t for t in tables if t.startswith("stg_")):
        stream = table.removeprefix("stg_")
        if stream in KEEP_AS_IS:
            continue
        contract = load_contract(stream)
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [table],
        ).fetchall()
        keys = {*contract.primary_key, *(f"{k}_token" for k in contract.primary_key), *EXTRA_IDS} - {"community_id"}
        select = []
        for column, kind in columns:
            quoted = f'"{column}"'
            if column in keys and kind == "VARCHAR":
                select.append(f"{quoted} || '~' || k::VARCHAR AS {quoted}")
            elif column in keys:
                select.append(f"({quoted} + k * 10000000)::{kind} AS {quoted}")
            elif column == contract.event_time:
                select.append(f"{quoted} + to_seconds(k) AS {quoted}")
            else:
                select.append(quoted)
        con.execute(
            f"INSERT INTO {table} SELECT {', '.join(select)} FROM {table} CROSS JOIN range(1, {factor}) AS r(k)"
        )


def _consent_to_care(home: Path, con: Any) -> None:
    """The wristband households opt in to elderly care on the platform (the harnesses simulate the
    devices and the platform as different communities, so none of them has), else the care feed is empty."""
    from warehouse.consent import apply_platform_consent

    con.execute(
        """
        INSERT INTO stg_platform_consent BY NAME
        SELECT DISTINCT community_id, 'bench-care-' || household_id_token AS consent_id_token, household_id_token,
            'elderly_care' AS function, true AS granted, TIMESTAMPTZ '2026-11-01 00:00:00+00' AS changed_at,
            TIMESTAMPTZ '2026-11-01 00:00:00+00' AS updated_at, 'bench/care-consent' AS _batch_id
        FROM stg_elderly_care WHERE household_id_token IS NOT NULL
        """
    )
    added = con.sql("SELECT * FROM stg_platform_consent WHERE _batch_id = 'bench/care-consent'").to_arrow_table()
    apply_platform_consent(_settings(home), added)


def _replicate_communities(con: Any, communities: int) -> None:
    tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
    for table in sorted(t for t in tables if t.startswith("stg_")):
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        select = ", ".join(
            "'bench-' || lpad(n::VARCHAR, 2, '0') AS community_id" if c == "community_id" else f'"{c}"' for c in cols
        )
        con.execute(f"INSERT INTO {table} SELECT {select} FROM {table} CROSS JOIN range(2, {communities + 1}) AS r(n)")


def prepare() -> dict[str, Any]:
    """The cached hubs (one community, ten); built once, reused by later runs."""
    import duckdb

    done = CACHE / "prepared.json"
    if done.exists():
        return dict(json.loads(done.read_text(encoding="utf-8")))
    shutil.rmtree(CACHE, ignore_errors=True)
    one = CACHE / "c1"
    base_rows = _base_hub(one)
    warehouse = one / "var" / "warehouse.duckdb"
    events = sum(n for s, n in base_rows.items() if s not in KEEP_AS_IS)
    dims = sum(n for s, n in base_rows.items() if s in KEEP_AS_IS)
    factor = max(1, math.ceil((TARGET_ROWS - dims) / events))
    with duckdb.connect(str(warehouse)) as con:
        _consent_to_care(one, con)
        _densify(con, factor)
        con.execute("CHECKPOINT")
    shutil.copytree(one, CACHE / f"c{COMMUNITIES}")
    with duckdb.connect(str(CACHE / f"c{COMMUNITIES}" / "var" / "warehouse.duckdb")) as con:
        _replicate_communities(con, COMMUNITIES)
        con.execute("CHECKPOINT")
    info = {"base_rows": base_rows, "factor": factor}
    done.write_text(json.dumps(info), encoding="utf-8")
    return info


# --------------------------------------------------------------------------- measurement (child processes)


def _settings(home: Path) -> Any:
    from tests.conftest import make_settings

    return make_settings(home, master_secret=MASTER_SECRET)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(module: Any, name: str, stage: str, timers: dict[str, float], errors: dict[str, int]) -> None:
    inner = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        except Exception as exc:
            errors[f"{name}: {type(exc).__name__}"] += 1
            raise
        finally:
            timers[stage] += time.perf_counter() - t

    setattr(module, name, wrapper)


class _TimedModels:
    """The warehouse connection as build_marts sees it, timing each model it runs."""

    def __init__(self, con: Any, times: dict[str, float]) -> None:
        self.con, self.times = con, times

    def execute(self, sql: str, *args: Any) -> Any:
        t = time.perf_counter()
        result = self.con.execute(sql, *args)
        created = re.search(r"CREATE OR REPLACE TABLE (\w+)", sql)
        if created:
            self.times[created.group(1)] = time.perf_counter() - t
        return result


def measure_hub(home: Path, memory_limit: str = "") -> dict[str, Any]:
    """Every mart built, then every feed published for every consumer; stages timed.

    The marts run as `pipeline.build` runs them (build_marts on a warehouse connection),
    then every feed as `pipeline.publish` publishes it (one connection, publish_feed per feed).
    """
    import warehouse.publisher as publisher
    from kernel.errors import PublishBlocked
    from privacy.keys import HubKeys
    from privacy.policy import load_policies
    from schemas.feeds import load_feeds
    from warehouse.marts import build_marts
    from warehouse.staging import warehouse

    settings = _settings(home)
    timers: dict[str, float] = defaultdict(float)
    errors: dict[str, int] = defaultdict(int)
    _timed(publisher, "consumer_view", "policy", timers, errors)
    _timed(publisher, "parquet_bytes", "parquet", timers, errors)
    _timed(publisher, "sign_json", "signing", timers, errors)
    _timed(publisher, "_publish_partition", "partition", timers, errors)
    _timed(publisher, "_partitions", "split", timers, errors)
    for lookup in ("feed_watermark", "consenting_households", "recipients_by_policy"):
        _timed(publisher, lookup, "lookups", timers, errors)
    _timed(publisher, "_audit_refusal", "refusals", timers, errors)
    idle_mib = _peak_mib()
    t0 = time.perf_counter()
    per_mart: dict[str, float] = {}
    with warehouse(settings.warehouse_file) as con:
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        marts = build_marts(_TimedModels(con, per_mart))  # type: ignore[arg-type]
    marts_s = time.perf_counter() - t0
    marts_mib = _peak_mib()
    t = time.perf_counter()
    catalog, policies, keys = load_feeds(), load_policies(settings.policies_dir), HubKeys.load(settings)
    per_feed: dict[str, dict[str, Any]] = {}
    with warehouse(settings.warehouse_file) as con:
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        for name in sorted(catalog):
            tf = time.perf_counter()
            blocked = ""
            try:
                written = publisher.publish_feed(con, settings, keys, catalog[name], policies)
            except PublishBlocked as exc:
                written, blocked = [], str(exc).splitlines()[0]
            rows = con.execute(f"SELECT count(*) FROM {catalog[name].mart}").fetchall()[0][0]
            per_feed[name] = {
                "s": time.perf_counter() - tf,
                "mart_rows": rows,
                "partitions": len(written),
                "published_rows": sum(p.rows for p in written),
                "consumers": sorted({p.consumer for p in written}),
                "blocked": blocked,
            }
    publish_s = time.perf_counter() - t
    total = time.perf_counter() - t0
    return {
        "total_s": total,
        "marts_s": marts_s,
        "publish_s": publish_s,
        "marts": len(marts),
        "per_mart": per_mart,
        "marts_mib": marts_mib,
        "memory_limit": memory_limit,
        "stages": dict(timers),
        "errors": dict(errors),
        "feeds": per_feed,
        "idle_mib": idle_mib,
        "peak_mib": _peak_mib(),
    }


def measure_floor(home: Path, memory_limit: str = "") -> dict[str, Any]:
    """DuckDB writing every staging table straight to Parquet (zstd, as the publisher writes)."""
    import duckdb

    idle_mib = _peak_mib()
    out = home / "floor"
    out.mkdir()
    t0 = time.perf_counter()
    with duckdb.connect(str(home / "var" / "warehouse.duckdb"), read_only=True) as con:
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        rows = 0
        for table in sorted(t for t in tables if t.startswith("stg_")):
            con.execute(f"COPY {table} TO '{out / table}.parquet' (FORMAT parquet, COMPRESSION zstd)")
            rows += con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    return {"total_s": time.perf_counter() - t0, "rows": rows, "idle_mib": idle_mib, "peak_mib": _peak_mib()}


# --------------------------------------------------------------------------- the benchmark


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _in_child(mode: str, prepared: Path, *args: str) -> dict[str, Any]:
    """A fresh copy of the prepared hub (not timed), measured in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "hub"
        shutil.copytree(prepared, home)
        load_before = _load()
        done = subprocess.run(
            [sys.executable, "-m", "bench.feeds_day", mode, str(home), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{mode} child failed:\n{done.stderr[-4000:]}")
        result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
        result["load"] = f"{load_before} → {_load()}"
        return result


def run() -> dict[str, Any]:
    """Prepare (cached), then marts + publish and the floor: 1 community, 10, and 10 with DuckDB's
    memory limit set (the hub's warehouse connection sets none: DuckDB's default is 80% of RAM)."""
    started = time.perf_counter()
    info = prepare()
    runs = []
    for n, limit in ((1, ""), (COMMUNITIES, ""), (COMMUNITIES, MEMORY_LIMIT)):
        prepared = CACHE / f"c{n}"
        args = (limit,) if limit else ()
        hubs, floors = [], []
        for _ in range(REPEATS):  # interleaved: the machine's load varies by the minute
            hubs.append(_in_child("hub", prepared, *args))
            floors.append(_in_child("floor", prepared, *args))
        hub, floor = min(hubs, key=lambda h: h["total_s"]), min(floors, key=lambda f: f["total_s"])
        hub["all_s"], floor["all_s"] = [h["total_s"] for h in hubs], [f["total_s"] for f in floors]
        runs.append({"communities": n, "limit": limit, "hub": hub, "floor": floor})
    return {**info, "runs": runs, "wall_s": time.perf_counter() - started, "uptime": _uptime()}


def _stages(hub: dict[str, Any]) -> dict[str, float]:
    """Where the hub's time went: each stage measured by its wrapper, the mart read by difference."""
    st = hub["stages"]
    partition = st.get("partition", 0.0)
    accounted = sum(st.get(k, 0.0) for k in ("split", "policy", "partition", "lookups", "refusals"))
    return {
        "marts (11 SQL models)": hub["marts_s"],
        "mart read into Arrow": hub["publish_s"] - accounted,
        "split into partitions": st.get("split", 0.0),
        "policy (consumer_view)": st.get("policy", 0.0),
        "Parquet encoding": st.get("parquet", 0.0),
        "manifest signing": st.get("signing", 0.0),
        "files + control DB + audit": partition - st.get("parquet", 0.0) - st.get("signing", 0.0),
        "watermark/consent/recipient lookups": st.get("lookups", 0.0),
    }


def _label(run: dict[str, Any]) -> str:
    return f"{run['communities']}" + (f", memory_limit {run['limit']}" if run["limit"] else "")


def report(r: dict[str, Any]) -> str:
    """The figures as Markdown."""
    runs = r["runs"]
    hub1, floor1 = runs[0]["hub"], runs[0]["floor"]
    feeds1 = hub1["feeds"]
    consumers = sorted({c for f in feeds1.values() for c in f["consumers"]})
    blocked = [n for n, f in feeds1.items() if f["blocked"]]
    met = hub1["total_s"] < 30 and hub1["peak_mib"] < 1024
    lines = [
        f"- staging: every stream's conformance-harness window (simulated sources over their real protocols,"
        f" extract → validate → de-identify → load; {sum(r['base_rows'].values()):,} rows), the event streams then"
        f" densified ×{r['factor']} in SQL (each row copied with a distinct key, its event time a few seconds on;"
        f" platform rows kept as they are; the wristband households given an elderly-care consent, else that feed"
        f" is empty) to **{floor1['rows']:,} staging rows** for one community-day; the {COMMUNITIES}-community set"
        f" copies every staging row under {COMMUNITIES - 1} more community ids (SQL, not simulated). Prepared once"
        " and cached, not timed",
        f"- one community: every mart ({hub1['marts']}) and every feed for {', '.join(consumers)}:"
        f" **{hub1['total_s']:.1f} s**, peak RSS **{hub1['peak_mib']:.0f} MiB** (goal < 30 s and < 1 GiB:"
        f" {'met' if met else 'MISSED'}); {sum(f['partitions'] for f in feeds1.values())} partitions,"
        f" {sum(f['published_rows'] for f in feeds1.values()):,} rows published; withheld or failed calls:"
        f" {hub1['errors'] or 'none'}; blocked feeds: {', '.join(blocked) or 'none'}",
        f"- floor, DuckDB `COPY stg_* TO … (FORMAT parquet, COMPRESSION zstd)` of the same staging rows:"
        f" {floor1['total_s']:.2f} s, peak RSS {floor1['peak_mib']:.0f} MiB; ratio hub / floor"
        f" **{hub1['total_s'] / floor1['total_s']:.1f}×**",
        "- each figure is a fresh child process on a fresh copy of the prepared hub; peak = its ru_maxrss (the hub"
        f" child holds {hub1['idle_mib']:.0f} MiB of imports before it starts, the floor child"
        f" {floor1['idle_mib']:.0f} MiB); {REPEATS} runs of each, interleaved, the fastest shown (every run's"
        " seconds below)",
        f"- machine: `{r['uptime']}` at the end; load average before → after each child:"
        + ";".join(f" {_label(v)}: hub {v['hub']['load']}, floor {v['floor']['load']}" for v in runs),
        "",
        "| communities | staging rows | marts + publish s | floor s | ratio | peak MiB hub (after marts) |"
        " peak MiB floor | partitions |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in runs:
        hub, floor = v["hub"], v["floor"]
        lines.append(
            f"| {_label(v)} | {floor['rows']:,} | {hub['total_s']:.1f} | {floor['total_s']:.2f} |"
            f" {hub['total_s'] / floor['total_s']:.1f}× | {hub['peak_mib']:.0f} ({hub['marts_mib']:.0f}) |"
            f" {floor['peak_mib']:.0f} | {sum(f['partitions'] for f in hub['feeds'].values())} |"
        )
    lines += ["", "Every run (s), hub / floor:", ""]
    lines += [
        f"- {_label(v)}: "
        + ", ".join(f"{h:.1f}" for h in v["hub"]["all_s"])
        + " / "
        + ", ".join(f"{f:.2f}" for f in v["floor"]["all_s"])
        for v in runs
    ]
    stages = [_stages(v["hub"]) for v in runs]
    lines += [
        "",
        "Where the hub's time goes in the fastest run (s; each stage timed by wrapping the publisher's"
        " functions, the mart read by difference):",
        "",
        "| stage | " + " | ".join(_label(v) for v in runs) + " |",
        "|---|" + "---:|" * len(runs),
    ]
    for stage in stages[0]:
        lines.append(f"| {stage} | " + " | ".join(f"{st[stage]:.2f}" for st in stages) + " |")
    marts = sorted(runs[0]["hub"]["per_mart"], key=lambda m: -runs[1]["hub"]["per_mart"][m])
    lines += ["", "The marts (s):", "", "| mart | " + " | ".join(_label(v) for v in runs) + " |"]
    lines.append("|---|" + "---:|" * len(runs))
    for mart in marts:
        lines.append(f"| {mart} | " + " | ".join(f"{v['hub']['per_mart'][mart]:.2f}" for v in runs) + " |")
    lines += [
        "",
        "Per feed, one community (s including its mart read; mart rows; partitions written):",
        "",
        "| feed | s | mart rows | partitions | consumers |",
        "|---|---:|---:|---:|---|",
    ]
    for name, f in sorted(feeds1.items()):
        lines.append(
            f"| {name} | {f['s']:.2f} | {f['mart_rows']:,} | {f['partitions']} | {', '.join(f['consumers'])} |"
        )
    return "\n".join([*lines, "", FINDINGS])


# What the figures say; the "before" figures are this benchmark's run at 01:51 UTC on 2026-11-24, before
# commits 80ce881 and 46c47ca changed the publisher's partition split.
FINDINGS = """Findings:

- **One community meets the goal by far**: the marts are about half of the time; the publisher's per-consumer
  policy (`consumer_view`), Parquet encoding and manifest signing are each well under 0.1 s, because every feed
  but `traffic.vehicle_passes` is an aggregate of a few hundred rows or fewer.
- **At 10 communities the marts dominate** (half to three quarters of the time): every build re-runs each model
  over all of staging (dedupe by `QUALIFY row_number() OVER (PARTITION BY community_id, record_id …)`, then
  aggregate), led by the row-level `mart_traffic_vehicle_passes`, `mart_access_entries_daily` (door access is
  half the rows) and `mart_traffic_vehicle_flow_hourly`. The cost grows with the rows (×10 rows gave ×6-13
  the total time across runs on this loaded machine) and, in production, with the retained history too:
  proposed, incremental marts (rebuild only the communities and days a batch touched) — the change that would
  matter most.
- **Peak memory at 10 communities is DuckDB's**, during the marts: the warehouse connection sets no
  `memory_limit` (DuckDB's default is 80% of RAM, here ~19 GiB), so it keeps what it reads. With
  `SET memory_limit = '512MB'` the whole run stays under 1 GiB (table above); in single runs its effect on
  time went from ~2× slower (41 s against 22 s, at 01:51) to ~2× faster (15.5 s against 33.2 s, at 02:03) with
  the machine's load, so the best of 3 in the table is the figure to compare.
  Proposed: `warehouse()` in `warehouse/staging.py` sets a configurable limit (not this benchmark's file).
- **Publisher, fixed here**: splitting a mart into partitions built one Python dict per row
  (`to_pylist`) and copied every partition with `take`; before the fix, at 10 communities the split took
  3.2-6.2 s (4.4 s and +900 MiB for `traffic.vehicle_passes` alone, measured in isolation) and set the peak
  (1,331 MiB with DuckDB limited to 512 MB). It is now Arrow's `group_by`, and a partition in one run of the
  mart's order is a zero-copy slice; the Parquet files are byte-identical (checked on every feed's partitions at
  1 and 10 communities; `tests/warehouse` and `tests/privacy` green, plus `tests/warehouse/test_partitions.py`).
- **Next in the publisher: files + control DB + audit**, 7-13 ms per partition (one SQLite transaction with its
  fsync and an audit hash-chain entry per partition): 2.3-4.3 s for 330 partitions. Proposed: one transaction per
  feed and consumer. The mart read (`SELECT *` of the whole mart into Arrow) is 0.7-2 s and 250 MiB of Arrow for the
  10-community `traffic.vehicle_passes`; reading only the touched days (as `publish(days=…)` already does in the
  DAGs) bounds it."""


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


if __name__ == "__main__":
    home = Path(sys.argv[2])
    result = measure_hub(home, *sys.argv[3:]) if sys.argv[1] == "hub" else measure_floor(home, *sys.argv[3:])
    print(json.dumps(result))
