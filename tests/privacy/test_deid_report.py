"""The de-identification report of a release (issue 16, item 5): computed from the released
table itself, with the shipped feeds and policies."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

from kernel.settings import REPO_ROOT
from privacy.deid_report import deidentification_report
from privacy.policy import load_policies
from schemas.feeds import load_feeds

FEEDS = load_feeds()
POLICIES = load_policies(REPO_ROOT / "config" / "policies")


def passes(types: list[str]) -> pa.Table:
    n = len(types)
    return pa.table(
        {
            "community_id": ["music-square"] * n,
            "day": [date(2026, 11, 20)] * n,
            "pass_time": [datetime(2026, 11, 20, 8, i, tzinfo=UTC) for i in range(n)],
            "gate_code": ["G1"] * n,
            "direction": ["in"] * n,
            "vehicle_type": types,
            "new_energy": [False] * n,
        }
    )


def test_microdata_risk_is_one_over_the_class_size_on_the_quasi_identifiers() -> None:
    feed = FEEDS["traffic.vehicle_passes"]
    policy = next(p for p in POLICIES.values() if p.grants(feed.name))
    report = deidentification_report(feed, policy, passes(["resident"] * 3 + ["visitor"]))
    assert set(report["quasi_identifiers"]) >= {"pass_time"}
    # Every pass has its own minute: each row is alone in its class.
    assert report["k_achieved"] == 1 and report["max_risk"] == 1.0 and report["average_risk"] == 1.0
    assert report["legal_basis"] == policy.legal_basis
    plate = next(f for f in report["fields"] if f["field"] == "plate_no")
    assert plate["category"] == "行踪轨迹" and plate["treatment"] == policy.operator(feed.name, "plate_no").name
    public = next(f for f in report["fields"] if f["field"] == "gate_code")
    assert public["category"] is None


def test_aggregate_k_and_suppression_rate_come_from_the_published_counts() -> None:
    feed = FEEDS["care.elderly_daily"]
    policy = next(p for p in POLICIES.values() if p.grants(feed.name))
    columns = {f.name: [None, None, None, None] for f in feed.fields}
    first = feed.counts[0]
    columns[first] = [7, None, 12, 5]  # one cell suppressed
    table = pa.table({name: pa.array(values, type=pa.int64() if name in feed.counts else pa.string())
                      for name, values in columns.items()})  # fmt: skip
    report = deidentification_report(feed, policy, table)
    assert report["k_achieved"] == 5
    assert report["max_risk"] == 0.2
    cells = 4 * len([c for c in feed.counts if c in table.column_names])
    assert report["suppression_rate"] == round((cells - 3) / cells, 6)
    assert all(f["category"] in (None, "医疗健康") for f in report["fields"])


def test_an_empty_release_reports_no_risk() -> None:
    feed = FEEDS["traffic.vehicle_passes"]
    policy = next(p for p in POLICIES.values() if p.grants(feed.name))
    report = deidentification_report(feed, policy, passes([]).slice(0, 0))
    assert report["k_achieved"] is None and report["max_risk"] == 0.0 and report["rows"] == 0
