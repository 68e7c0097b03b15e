"""The de-identification report of one release (issue 16, item 5), in the spirit of GB/T
42460-2023 (个人信息去标识化效果评估指南): for a feed × consumer × partition version, the
quasi-identifiers, the k achieved, the largest and average re-identification risk per record,
the suppression rate, each field's treatment and its GB/T 45574-2025 category, and the legal
basis. It is computed from the very table released, signed into its manifest, served with it.

Risk per record is the prosecutor model's 1 / (size of the record's equivalence class on the
quasi-identifiers): for microdata the classes are the released rows grouped by their quasi
columns; for an aggregate feed each published count is a class of that many people, and a
suppressed (null) count discloses no one.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from privacy.policy import Policy
from schemas.contract import PrivacyClass
from schemas.feeds import Feed

PERSONAL = {PrivacyClass.DIRECT, PrivacyClass.QUASI, PrivacyClass.SENSITIVE, PrivacyClass.FREE_TEXT}
GENERAL = "一般个人信息"  # personal, but in none of the sensitive categories


def deidentification_report(feed: Feed, policy: Policy, table: pa.Table) -> dict[str, Any]:
    """What this release discloses and how well it is protected, as JSON-ready values."""
    grant = policy.feeds[feed.name]
    released = set(table.column_names)
    fields = []
    for f in feed.fields:
        operator = policy.operator(feed.name, f.name)
        personal = f.privacy in PERSONAL
        fields.append(
            {
                "field": f.name,
                "privacy": str(f.privacy),
                "treatment": operator.name,
                "released": f.name in released,
                "category": (f.sensitive_category or feed.sensitive_category or GENERAL) if personal else None,
            }
        )
    quasi = [f.name for f in feed.fields if f.privacy is PrivacyClass.QUASI and f.name in released]
    classes = _aggregate_classes(feed, table) if feed.kind == "aggregate" else _microdata_classes(table, quasi)
    report: dict[str, Any] = {
        "standard": "GB/T 42460-2023 (risk), GB/T 45574-2025 (categories)",
        "kind": feed.kind,
        "quasi_identifiers": quasi,
        "k_required": grant.k,
        "k_achieved": min(classes) if classes else None,
        "max_risk": round(1 / min(classes), 6) if classes else 0.0,
        "average_risk": round(sum(1 / size for size in classes) / len(classes), 6) if classes else 0.0,
        "suppression_rate": _suppression_rate(feed, table),
        "rows": table.num_rows,
        "fields": fields,
        "legal_basis": policy.legal_basis,
    }
    return report


def _microdata_classes(table: pa.Table, quasi: list[str]) -> list[int]:
    """The size of each released row's equivalence class on the quasi-identifiers."""
    if table.num_rows == 0:
        return []
    if not quasi:
        return [table.num_rows] * table.num_rows  # nothing singles a row out beyond the whole
    counts = table.select(quasi).group_by(quasi).aggregate([([], "count_all")])
    sizes = counts.column("count_all").to_pylist()
    return [size for size in sizes for _ in range(size)]


def _aggregate_classes(feed: Feed, table: pa.Table) -> list[int]:
    """Each published (non-null, non-zero) count: a class of that many people."""
    sizes: list[int] = []
    for name in feed.counts:
        if name in table.column_names:
            sizes += [int(v) for v in table.column(name).to_pylist() if v]
    return sizes


def _suppression_rate(feed: Feed, table: pa.Table) -> float:
    """The share of count cells withheld (null) by small-cell suppression."""
    cells = [table.column(n) for n in feed.counts if n in table.column_names]
    total = sum(len(c) for c in cells)
    if not total:
        return 0.0
    return round(sum(pc.sum(pc.is_null(c)).as_py() or 0 for c in cells) / total, 6)
