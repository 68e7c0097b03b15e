"""What left the community, per consumer and month (issue 19, item 3): a page an owner reads
in two minutes. Per feed: how many exports, partitions (versions) and rows left; which
treatments the consumer's policy applies to its fields (sealed, pseudonymised, generalised,
aggregated, masked); how many of the consumer's requests were refused; and the legal basis.

The numbers come from the audit log (exports and refusals of the month, local time), the
treatments and the basis from the policy in force (each export also records the fingerprint
of the policy it was served under; the shared-data page names it).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from api.admin.audit_log import kind_condition
from kernel.settings import Settings
from privacy.policy import Policy, load_policies
from schemas.feeds import load_feeds
from warehouse.control import session_scope
from warehouse.models import AuditEntry

# The operators an owner is told about, as treatments (drop and keep are not treatments).
TREATMENTS = {
    "encrypt_to": "sealed",
    "seal_to": "sealed",
    "pseudonymise": "pseudonymised",
    "generalise": "generalised",
    "mask": "masked",
    "aggregate": "aggregated",
}


@dataclass
class FeedMonth:
    """One feed's month for one consumer."""

    feed: str
    title: dict[str, str]
    exports: int = 0
    rows: int = 0
    partitions: set[tuple[str, int]] = field(default_factory=set)  # (partition, version)
    treatments: dict[str, list[str]] = field(default_factory=dict)  # treatment -> fields


@dataclass
class ConsumerMonth:
    """What left for one consumer in one month."""

    consumer: str
    month: str  # YYYY-MM
    start: datetime
    end: datetime
    title: str | None
    legal_basis: str | None
    feeds: list[FeedMonth]
    refusals: int
    rows: int


def month_bounds(month: str, timezone: str) -> tuple[datetime, datetime]:
    """The first instant of a local month and of the next."""
    first = date.fromisoformat(month + "-01")
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    zone = ZoneInfo(timezone)
    return datetime.combine(first, time(), zone), datetime.combine(following, time(), zone)


def treatments(policy: Policy | None, feed: str) -> dict[str, list[str]]:
    """The fields of `feed` the policy treats, by treatment."""
    found: dict[str, list[str]] = defaultdict(list)
    if policy is None or not policy.grants(feed):
        return {}
    for name in policy.feeds[feed].fields:
        treatment = TREATMENTS.get(policy.operator(feed, name).name)
        if treatment:
            found[treatment].append(name)
    if policy.feeds[feed].k:
        found.setdefault("aggregated", [])
    return dict(found)


def consumer_month(settings: Settings, consumer: str, month: str) -> ConsumerMonth:
    """What left for `consumer` in the local month `month` (YYYY-MM)."""
    start, end = month_bounds(month, settings.timezone)
    policies = {p.consumer: p for p in load_policies(settings.policies_dir).values()}
    policy = policies.get(consumer)
    feeds = load_feeds()
    in_month = (AuditEntry.actor == consumer, AuditEntry.at >= start, AuditEntry.at < end)
    by_feed: dict[str, FeedMonth] = {}
    with session_scope(settings.control_url) as session:
        exports = session.execute(
            select(AuditEntry.feed, AuditEntry.rows, AuditEntry.detail).where(*in_month, kind_condition("export"))
        )
        for feed_or_none, rows, detail in exports:
            feed = str(feed_or_none)  # an export always names its feed
            known = feeds.get(feed)
            title: dict[str, str] = known.title.model_dump() if known else {"zh": feed, "en": feed}
            month_of_feed = by_feed.setdefault(feed, FeedMonth(feed, title, treatments=treatments(policy, feed)))
            month_of_feed.exports += 1
            month_of_feed.rows += int(rows or 0)
            for served in json.loads(detail or "{}").get("partitions") or []:
                month_of_feed.partitions.add((str(served.get("partition")), int(served.get("version") or 0)))
        refusals = session.execute(select(func.count()).where(*in_month, kind_condition("refusal"))).scalar_one()
    listed = sorted(by_feed.values(), key=lambda f: f.feed)
    return ConsumerMonth(
        consumer=consumer,
        month=month,
        start=start,
        end=end,
        title=policy.title if policy else None,
        legal_basis=policy.legal_basis if policy else None,
        feeds=listed,
        refusals=int(refusals),
        rows=sum(f.rows for f in listed),
    )


def consumers(settings: Settings) -> list[str]:
    """Every consumer with a policy, by name."""
    return sorted(p.consumer for p in load_policies(settings.policies_dir).values())
