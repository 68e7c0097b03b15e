"""What a consumer can derive from everything it is granted (issue 16, item 4), checked before
a release; a release that would make a suppressed count recoverable is blocked (fail closed).

Two ways a count below k comes back:
- **Across feeds.** A count a feed suppresses may be countable from another feed's rows (the
  care feed's falls from the alarms feed's fall alarms). Feeds declare these relations
  (`derivable` in schemas/feeds/*.yaml); a consumer granted both, with those rows not
  excluded by its policy, must not receive the count suppressed.
- **Across versions.** Superseded versions of a partition stay downloadable, so the
  difference between two versions of a count is disclosed too: a new version whose sensitive
  count (people's health, money) moved by fewer than k (and by more than 0), or that
  publishes a cell an earlier version suppressed, or suppresses one it published, is blocked
  until the cell is stable. Counts of things (vehicles, readings) may be corrected freely.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from kernel.errors import PublishBlocked
from privacy.policy import Policy
from schemas.contract import PrivacyClass
from schemas.feeds import Feed


def recoverable_elsewhere(feed: Feed, policy: Policy) -> list[str]:
    """The count fields of `feed` this consumer could also count from another feed it is granted."""
    found = []
    for relation in feed.derivable:
        if not policy.grants(relation.feed):
            continue
        excluded = policy.feeds[relation.feed].exclude
        covered = any(set(values) <= set(excluded.get(name, [])) for name, values in relation.where.items())
        if not covered:
            found.append(f"{relation.count} (countable from {relation.feed})")
    return found


def check_across_feeds(feed: Feed, policy: Policy, view: pa.Table) -> None:
    """Block a release whose suppressed counts another granted feed would give back."""
    exposed = recoverable_elsewhere(feed, policy)
    if not exposed:
        return
    for relation in feed.derivable:
        if relation.count in view.column_names and view.column(relation.count).null_count:
            raise PublishBlocked(
                f"feed {feed.name} for {policy.consumer}: suppressed {', '.join(exposed)}: "
                "exclude those rows from the other feed in the policy"
            )


def check_across_versions(feed: Feed, policy: Policy, view: pa.Table, earlier: list[pa.Table], k: int) -> None:
    """Block a new version of an aggregate partition whose counts differ from an earlier
    version's by fewer than k, or flip between published and suppressed."""
    sensitive = [n for n in feed.counts if feed.field(n).privacy is PrivacyClass.SENSITIVE]
    if feed.kind != "aggregate" or not earlier or not sensitive:
        return
    keys = [n for n in view.column_names if n not in feed.counts]
    now = _cells(view, keys, sensitive)
    for old in earlier:
        for cell, before in _cells(old, keys, sensitive).items():
            after = now.get(cell)
            if cell not in now or before == after:
                continue
            if (before is None) != (after is None) or (
                before is not None and after is not None and abs(after - before) < k
            ):
                raise PublishBlocked(
                    f"feed {feed.name} for {policy.consumer}: count {cell[1]} would change by fewer than {k} "
                    "from a version the consumer already holds (the difference would disclose a small count)"
                )


def _cells(table: pa.Table, keys: list[str], counts: list[str]) -> Mapping[tuple[tuple[object, ...], str], int | None]:
    """Each count cell by (the row's key values, the count field)."""
    rows = table.to_pylist()
    return {(tuple(row.get(k) for k in keys), name): row[name] for row in rows for name in counts if name in row}
