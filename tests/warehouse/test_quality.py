"""Data quality: the GX results kept for every batch, and the report per stream and feed, against
real windows of the simulated parking vendor (good and faulty records). Expected numbers come
from the simulator's ground truth (what it served and which faults it injected), never from
the code under test."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import pipeline
from kernel.errors import BatchRejected
from kernel.settings import Settings
from neuron.cli import app
from privacy.keys import init_keys
from schemas.contract import load_contract
from schemas.feeds import load_feeds
from simulator.parking import Faults, ParkingSimulator
from simulator.server import start_parking_api
from tests.conftest import TOKEN, make_settings
from tests.leaks import find_leaks
from warehouse import quality
from warehouse.control import session_scope
from warehouse.migrations import migrate
from warehouse.models import BatchQuality, ExpectationResult, LoadRecord, QuarantineCount
from warehouse.publisher import feed_watermark
from warehouse.quality import cached_feed_quality, feed_quality, quality_report, reason_zh, write_report
from warehouse.quality_ledger import keep_batch_quality

DAY = date(2026, 11, 20)
STREAM = "vehicle_passes"
FLOW = "traffic.vehicle_flow_hourly"
# What each injected fault is quarantined for (the contract's checks, in the reason's words).
FAULT_REASONS = {
    "malformed_plate": "plate_no: does not match the contract's pattern",
    "bad_pass_time": "pass_time: not a valid timestamp",
    "bad_direction": "direction: is not one of the allowed values",
}


def expected_counts(simulator: ParkingSimulator, start: datetime, end: datetime) -> dict[str, Any]:
    """The window's numbers from the simulator's ground truth."""
    served = simulator.records_updated_between(start, end)
    unique = {r["record_id"] for r in served}
    faults = {rid: simulator.fault_log.get(rid) for rid in unique}
    reasons = Counter(FAULT_REASONS[f] for f in faults.values() if f in FAULT_REASONS)
    return {
        "rows_in": len(served),
        "duplicates_dropped": len(served) - len(unique),
        "rows_quarantined": sum(reasons.values()),
        "rows_loaded": len(unique) - sum(reasons.values()),
        "quarantined_by_reason": dict(reasons),
    }


def kept(settings: Settings) -> tuple[list[BatchQuality], list[ExpectationResult], list[QuarantineCount]]:
    with session_scope(settings.control_url) as s:
        batches = list(s.scalars(select(BatchQuality).order_by(BatchQuality.window_end)))
        expectations = list(s.scalars(select(ExpectationResult).order_by(ExpectationResult.position)))
        reasons = list(s.scalars(select(QuarantineCount).order_by(QuarantineCount.position)))
    return batches, expectations, reasons


@pytest.fixture(scope="module")
def day_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A hub with DAY's window run through every stage (shared: the tests only read it, or re-run
    the same window, which changes nothing), and what the simulator says it should give."""
    simulator = ParkingSimulator(seed=7, faults=Faults())
    with start_parking_api(simulator, token=TOKEN) as vendor:
        hub = make_settings(tmp_path_factory.mktemp("quality") / "hub", vendor.url)
        init_keys(hub)
        migrate(hub.control_url)
        start, end = pipeline.local_day_window(hub, DAY)
        summary = pipeline.run_window(hub, STREAM, start, end)
        expected = expected_counts(simulator, start, end)
        yield {"hub": hub, "simulator": simulator, "start": start, "end": end, "summary": summary, **expected}


def test_each_batch_keeps_its_counts_and_every_expectations_outcome(day_run: dict[str, Any]) -> None:
    hub = day_run["hub"]
    assert day_run["rows_quarantined"] > 0 and day_run["duplicates_dropped"] > 0  # the fixture has faults
    (batch,), expectations, reasons = kept(hub)
    assert batch.batch_id == day_run["summary"]["batch_id"]
    assert (batch.stream, batch.community_id) == (STREAM, hub.community_id)
    assert (batch.window_start, batch.window_end) == (day_run["start"], day_run["end"])
    assert batch.suite == "vehicle_passes.v1"
    assert batch.rows_in == day_run["rows_in"]
    assert batch.rows_loaded == day_run["rows_loaded"]
    assert batch.rows_quarantined == day_run["rows_quarantined"]
    assert batch.duplicates_dropped == day_run["duplicates_dropped"]
    assert {r.reason: r.rows for r in reasons} == day_run["quarantined_by_reason"]
    assert batch.gx_success is False and batch.rejected is False
    # One result per expectation of the suite; only the plate pattern and the direction set fail,
    # each on as many rows as the simulator broke (bad times never reach GX: the cast stops them).
    assert len(expectations) == len(load_contract(STREAM).expectations())
    failed = {(e.expectation, e.column): e.unexpected for e in expectations if not e.success}
    by_reason = day_run["quarantined_by_reason"]
    assert failed == {
        ("expect_column_values_to_match_regex", "plate_no"): by_reason[FAULT_REASONS["malformed_plate"]],
        ("expect_column_values_to_be_in_set", "direction"): by_reason[FAULT_REASONS["bad_direction"]],
    }
    assert all(e.unexpected == 0 for e in expectations if e.success)


def test_a_rerun_of_the_batch_replaces_its_quality_rows(day_run: dict[str, Any]) -> None:
    hub = day_run["hub"]
    before = kept(hub)
    pipeline.run_window(hub, STREAM, day_run["start"], day_run["end"])
    after = kept(hub)
    assert [len(rows) for rows in after] == [len(rows) for rows in before] == [1, len(before[1]), 3]
    assert after[0][0].validated_at >= before[0][0].validated_at
    columns = ("rows_in", "rows_loaded", "rows_quarantined", "duplicates_dropped", "gx_success")
    assert [getattr(after[0][0], c) for c in columns] == [getattr(before[0][0], c) for c in columns]
    with session_scope(hub.control_url) as s:
        assert s.scalar(select(func.count()).select_from(BatchQuality)) == 1


def test_report_numbers_status_and_freshness_with_an_injected_clock(day_run: dict[str, Any]) -> None:
    hub = day_run["hub"]
    end = day_run["end"]
    # The period is the local day the batch's window closed in (issue 19: one stated period).
    closing = quality_report(hub, now=end)
    (stream,) = [s for s in closing["streams"] if s["stream"] == STREAM]
    for key in ("rows_in", "rows_loaded", "rows_quarantined", "duplicates_dropped", "quarantined_by_reason"):
        assert stream[key] == day_run[key], key
    assert (stream["batches"], stream["batches_rejected"]) == (1, 0)
    assert closing["period"]["label"] == f"{DAY.isoformat()} 00:00–24:00 {hub.timezone}"
    assert closing["summary"]["totals"]["rows_in"] == day_run["rows_in"]
    by_reason = day_run["quarantined_by_reason"]
    assert stream["expectations_failed"] == [
        {
            "expectation": "expect_column_values_to_be_in_set",
            "column": "direction",
            "batches": 1,
            "unexpected": by_reason[FAULT_REASONS["bad_direction"]],
        },
        {
            "expectation": "expect_column_values_to_match_regex",
            "column": "plate_no",
            "batches": 1,
            "unexpected": by_reason[FAULT_REASONS["malformed_plate"]],
        },
    ]
    assert stream["expectations_evaluated"] == len(load_contract(STREAM).expectations())
    report = quality_report(hub, now=end + timedelta(hours=3))
    (stream,) = [s for s in report["streams"] if s["stream"] == STREAM]
    assert stream["rows_in"] == 0 and stream["expectations_failed"] == []  # the next local day: nothing yet
    assert stream["last_batch"]["batch_id"] == day_run["summary"]["batch_id"]
    assert stream["last_batch"]["status"] == "loaded"
    assert stream["freshness_seconds"] == 3 * 3600 and stream["window_seconds"] == 24 * 3600
    # About 1 % quarantined, under half the 5 % budget; loaded 3 h ago, a 24 h window: ok.
    assert (stream["status"], stream["issues"]) == ("ok", [])

    (flow,) = [f for f in report["feeds"] if f["feed"] == FLOW]
    assert flow["watermark"] == end.isoformat() == feed_watermark(hub, load_feeds()[FLOW]).isoformat()  # type: ignore[union-attr]
    assert flow["freshness_seconds"] == 3 * 3600
    assert flow["sources"] == [{"stream": STREAM, "status": "ok"}]
    assert flow["status"] == "ok"
    days = len(day_run["summary"]["days"])  # the local days the window's passes fall on
    published = {c["consumer"]: (c["partitions"], c["versions"]) for c in flow["consumers"]}
    assert published["district"] == (days, days)  # one version of each day's partition
    assert flow["last_published"] is not None

    # Two windows without new data: a warning; four: failing. The period then holds no batch.
    late = quality_report(hub, now=end + timedelta(hours=49))
    (stream,) = [s for s in late["streams"] if s["stream"] == STREAM]
    assert (stream["status"], [i["code"] for i in stream["issues"]]) == ("warn", ["late"])
    assert stream["freshness_seconds"] == 49 * 3600 and stream["batches"] == stream["rows_in"] == 0
    assert "2天1小时" in stream["issues"][0]["zh"] and "2 d 1 h" in stream["issues"][0]["en"]
    stale = feed_quality(hub, FLOW, now=end + timedelta(hours=97))
    assert (stale["status"], stale["freshness_seconds"]) == ("stale", 97 * 3600)
    assert [i["code"] for i in stale["issues"]] == ["source"]


def test_the_catalog_reuses_a_status_briefly_but_freshness_follows_the_clock(day_run: dict[str, Any]) -> None:
    hub = day_run["hub"]
    now = day_run["end"] + timedelta(hours=1)
    first = cached_feed_quality(hub, FLOW, now)
    assert (first["status"], first["freshness_seconds"], first["checked_at"]) == ("ok", 3600, now.isoformat())
    again = cached_feed_quality(hub, FLOW, now + timedelta(seconds=20))
    assert (again["freshness_seconds"], again["checked_at"]) == (3620, now.isoformat())  # no new query
    later = now + timedelta(hours=96)
    moved = cached_feed_quality(hub, FLOW, later)
    assert (moved["status"], moved["checked_at"]) == ("stale", later.isoformat())
    assert {k: moved[k] for k in ("status", "freshness_seconds")} == {
        k: feed_quality(hub, FLOW, later)[k] for k in ("status", "freshness_seconds")
    }


def test_an_expired_status_is_answered_from_while_one_thread_recomputes_it(
    day_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, now = day_run["hub"], day_run["end"] + timedelta(hours=2)
    assert cached_feed_quality(hub, FLOW, now)["checked_at"] == now.isoformat()
    started, release = threading.Event(), threading.Event()
    compute = quality._all_feed_statuses

    def held(settings: Settings, at: datetime) -> dict[str, dict[str, Any]]:
        started.set()
        release.wait(timeout=30)  # held until the other caller has had its answer
        return compute(settings, at)

    monkeypatch.setattr(quality, "_all_feed_statuses", held)
    later = now + timedelta(minutes=5)
    refresher = threading.Thread(target=cached_feed_quality, args=(hub, FLOW, later))
    refresher.start()
    assert started.wait(timeout=30)
    meanwhile = cached_feed_quality(hub, FLOW, later)  # answered at once, from the previous status
    release.set()
    refresher.join(timeout=30)
    assert (meanwhile["checked_at"], meanwhile["freshness_seconds"]) == (now.isoformat(), 2 * 3600 + 300)
    assert cached_feed_quality(hub, FLOW, later)["checked_at"] == later.isoformat()


def test_a_rejected_batch_fails_its_stream_and_keeps_why(tmp_path: Path) -> None:
    broken = ParkingSimulator(seed=7, faults=Faults(malformed_rate=0.3))
    with start_parking_api(broken, token="test-token") as api:
        settings = make_settings(tmp_path, api.url)
        init_keys(settings)
        migrate(settings.control_url)
        start, end = pipeline.local_day_window(settings, DAY)
        with pytest.raises(BatchRejected):
            pipeline.run_window(settings, STREAM, start, end)
    expected = expected_counts(broken, start, end)
    (batch,), _, reasons = kept(settings)
    assert batch.rejected is True and batch.gx_success is False
    assert (batch.rows_in, batch.rows_loaded, batch.rows_quarantined) == (
        expected["rows_in"],
        0,  # nothing of a rejected batch is loaded
        expected["rows_quarantined"],
    )
    assert {r.reason: r.rows for r in reasons} == expected["quarantined_by_reason"]
    report = quality_report(settings, now=end)  # the local day the rejected window closed
    (stream,) = [s for s in report["streams"] if s["stream"] == STREAM]
    assert stream["status"] == "fail"
    assert [i["code"] for i in stream["issues"]] == ["never_loaded", "last_batch_rejected", "quarantine_share"]
    assert stream["last_batch"]["status"] == "rejected" and stream["batches_rejected"] == 1
    (flow,) = [f for f in report["feeds"] if f["feed"] == FLOW]
    assert (flow["status"], flow["watermark"], flow["freshness_seconds"]) == ("fail", None, None)


@pytest.mark.parametrize(
    ("reason", "chinese"),
    [
        ("plate_no: does not match the contract's pattern", "plate_no：不符合契约规定的格式"),
        ("pass_time: not a valid timestamp", "pass_time：不是有效的时间"),
        ("direction: is not one of the allowed values", "direction：不是允许的取值之一"),
        ("schema drift: unexpected field(s) colour", "数据源结构变化：未声明的字段 colour"),
        ("a wording validate does not use yet", "a wording validate does not use yet"),  # kept as it is
    ],
)
def test_quarantine_reasons_read_in_chinese_on_the_page(reason: str, chinese: str) -> None:
    assert reason_zh(reason) == chinese


REPORT_KEYS = {"schema_version", "generated_at", "community", "period", "rules", "summary", "streams", "feeds"}
STREAM_KEYS = {
    "stream", "title", "status", "issues", "batches", "batches_rejected", "rows_in", "rows_loaded",
    "rows_quarantined", "duplicates_dropped", "quarantined_by_reason", "expectations_evaluated",
    "expectations_failed", "last_batch", "newest_loaded_window_end", "window_seconds", "freshness_seconds",
}  # fmt: skip
FEED_KEYS = {
    "feed", "title", "cadence", "status", "issues", "sources", "watermark", "freshness_seconds",
    "last_published", "consumers",
}  # fmt: skip
LAST_BATCH_KEYS = {
    "batch_id", "window_start", "window_end", "validated_at", "status", "rows_in", "rows_loaded",
    "rows_quarantined", "gx_success", "rejected",
}  # fmt: skip


def test_json_and_html_files_hold_the_numbers_and_no_plate(day_run: dict[str, Any], tmp_path: Path) -> None:
    hub, simulator = day_run["hub"], day_run["simulator"]
    now = day_run["end"]  # the local day DAY's window closed in: its numbers are the period's
    json_path, html_path = write_report(hub, tmp_path / "report", now)
    report = json.loads(json_path.read_text(encoding="utf-8"))
    assert report == json.loads(json.dumps(quality_report(hub, now), ensure_ascii=False))
    # The schema consumers of quality.json rely on.
    assert set(report) == REPORT_KEYS and report["schema_version"] == 1
    assert report["summary"]["streams"].keys() == {"ok", "warn", "not_connected", "stale", "fail"}
    assert all(set(s) == STREAM_KEYS for s in report["streams"])
    assert all(set(f) == FEED_KEYS for f in report["feeds"])
    assert all(
        set(c) == {"consumer", "partitions", "versions", "last_published"}
        for f in report["feeds"]
        for c in f["consumers"]
    )
    (stream,) = [s for s in report["streams"] if s["stream"] == STREAM]
    assert set(stream["last_batch"]) == LAST_BATCH_KEYS
    assert all(set(i) == {"code", "status", "en", "zh"} for s in report["streams"] for i in s["issues"])

    html = html_path.read_text(encoding="utf-8")
    assert "数据质量报告" in html and "Data quality report" in html and '数据源 <span class="en">Source streams' in html
    for key in ("rows_in", "rows_loaded", "rows_quarantined", "duplicates_dropped"):
        assert f'<td class="n">{day_run[key]}</td>' in html, key
    for reason, rows in day_run["quarantined_by_reason"].items():  # in Chinese, then as the quarantine has it
        escaped = reason.replace("'", "&#39;")
        assert (
            f'<tr><td>{reason_zh(reason)}<br><span class="muted">{escaped}</span></td><td class="n">{rows}</td></tr>'
            in html
        )
    assert "plate_no 不符合契约规定的格式" in html  # the failed expectation, in words
    assert "2026-11-21 00:00" in html  # generated at, in Shanghai time
    # Self-contained: nothing fetched from elsewhere, no script.
    assert "<script" not in html and "<link" not in html and "http://" not in html and "https://" not in html
    texts = [("quality.json", json_path.read_text(encoding="utf-8")), ("quality.html", html)]
    assert find_leaks(simulator.all_plates(), texts) == []


def test_neuron_quality_writes_the_report_and_prints_json(
    day_run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = day_run["hub"]
    for name in list(os.environ):
        if name.startswith("NEURON_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NEURON_HOME", str(hub.home))
    out = tmp_path / "cli-report"
    result = CliRunner().invoke(app, ["quality", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed == json.loads((out / "quality.json").read_text(encoding="utf-8"))
    assert (out / "quality.html").exists()
    (stream,) = [s for s in printed["streams"] if s["stream"] == STREAM]
    # The real clock: DAY is days ago, out of the period; its batch is still the last one.
    assert stream["last_batch"]["rows_quarantined"] == day_run["rows_quarantined"]
    table = CliRunner().invoke(app, ["quality"])
    assert table.exit_code == 0, table.output
    assert STREAM in table.output and FLOW in table.output


def kept_batch(
    settings: Settings,
    hour: int,
    status: str,
    counts: tuple[int, int, int, int],
    reasons: dict[str, int],
    failed: dict[str, int],
) -> None:
    """A batch of vehicle_passes for one hour of DAY, as the validate stage would have kept it."""
    rows_in, good, quarantined, duplicates = counts
    end = datetime(DAY.year, DAY.month, DAY.day, hour + 1, tzinfo=UTC)
    suite = [("expect_column_values_to_match_regex", "plate_no"), ("expect_column_values_to_be_in_set", "direction")]
    suite.append(("expect_column_values_to_not_be_null", "record_id"))
    summary = {
        "rows_in": rows_in,
        "rows_good": good,
        "rows_quarantined": quarantined,
        "duplicates_dropped": duplicates,
        "quarantined_by_reason": reasons,
        "expectations": [
            {"expectation": e, "column": c, "success": c not in failed, "unexpected": failed.get(c, 0)}
            for e, c in suite
        ],
        "schema_drift": [],
        "rejected": status == "rejected",
    }
    with session_scope(settings.control_url) as session:
        record = LoadRecord(
            batch_id=f"{STREAM}/{settings.community_id}/{hour}",
            stream=STREAM,
            community_id=settings.community_id,
            window_start=end - timedelta(hours=1),
            window_end=end,
            status=status,
        )
        session.add(record)
        keep_batch_quality(session, record, "vehicle_passes.v1", summary)


def test_report_of_kept_batches_on_sqlite_and_postgresql(control_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "hub", control_db_url=control_url)
    migrate(control_url)
    plate, direction = "plate_no: does not match the contract's pattern", "direction: is not one of the allowed values"
    kept_batch(settings, 0, "loaded", (100, 95, 5, 0), {plate: 3, direction: 2}, {"plate_no": 3, "direction": 2})
    kept_batch(settings, 1, "loaded", (204, 200, 0, 4), {}, {})
    kept_batch(settings, 2, "rejected", (50, 20, 30, 0), {plate: 30}, {"plate_no": 30})
    now = datetime(DAY.year, DAY.month, DAY.day, 3, 30, tzinfo=UTC)
    report = quality_report(settings, now)
    (stream,) = [s for s in report["streams"] if s["stream"] == STREAM]
    assert {k: stream[k] for k in ("batches", "batches_rejected", "rows_in", "rows_loaded", "rows_quarantined")} == {
        "batches": 3,
        "batches_rejected": 1,
        "rows_in": 100 + 204 + 50,
        "rows_loaded": 95 + 200 + 0,  # nothing of the rejected batch
        "rows_quarantined": 5 + 0 + 30,
    }
    assert stream["duplicates_dropped"] == 4
    assert stream["quarantined_by_reason"] == {direction: 2, plate: 33}
    assert stream["expectations_evaluated"] == 3
    assert [(e["column"], e["batches"], e["unexpected"]) for e in stream["expectations_failed"]] == [
        ("direction", 1, 2),
        ("plate_no", 2, 33),
    ]
    assert stream["last_batch"]["status"] == "rejected" and stream["last_batch"]["rows_loaded"] == 0
    # Loaded until 02:00, hourly: 1 h 30 min is not late; but the newest batch was rejected
    # (fail) and 35 of 354 rows, 9.9 %, were quarantined (over half the 5 % budget: warn).
    assert stream["freshness_seconds"] == 5400 and stream["newest_loaded_window_end"] == "2026-11-20T02:00:00+00:00"
    assert stream["status"] == "fail"
    assert [(i["code"], i["status"]) for i in stream["issues"]] == [
        ("last_batch_rejected", "fail"),
        ("quarantine_share", "warn"),
    ]
    assert "9.9%" in stream["issues"][1]["en"]
    (flow,) = [f for f in report["feeds"] if f["feed"] == FLOW]
    assert (flow["status"], flow["watermark"], flow["freshness_seconds"]) == ("fail", "2026-11-20T02:00:00+00:00", 5400)
    assert flow["last_published"] is None and all(c["versions"] == 0 for c in flow["consumers"])
