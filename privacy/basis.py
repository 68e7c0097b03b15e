"""The legal basis of every path that carries in-home devices' data, per consumer (issue 16, item 3).

A path is a feed granted to the consumer (`feed:care.elderly_daily`) or a relay upstream sent
under its policy (`relay:district`). For each in-home category on it (an alarm's category;
`*` for a whole feed of such data) the basis the policy states: `consent` or
`vital_interest`. The console shows this table; the publisher and the relay enforce it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kernel.relay_settings import Upstream
from privacy.policy import RELAY_IN_HOME, Basis, Policy
from schemas.feeds import Feed, load_feeds

WHOLE_FEED = "*"


@dataclass(frozen=True)
class PathBasis:
    """One consumer × path × in-home category and the basis it goes under."""

    consumer: str
    path: str  # "feed:<name>" or "relay:<upstream>"
    category: str  # an alarm category, or "*" for the whole feed
    consent_function: str  # whose opt-in counts when the basis is consent
    basis: Basis | None  # None: not sent on this path (excluded, or not among the upstream's categories)


def basis_table(
    policies: Mapping[str, Policy], upstreams: Iterable[Upstream] = (), feeds: Mapping[str, Feed] | None = None
) -> list[PathBasis]:
    """Every consumer × in-home path × category with its basis, sorted by consumer and path."""
    feeds = feeds if feeds is not None else load_feeds()
    rows: list[PathBasis] = []
    for policy in policies.values():
        for feed_name, grant in policy.feeds.items():
            feed = feeds.get(feed_name)
            if feed is None or feed.in_home is None:
                continue
            in_home = feed.in_home
            if in_home.by is None:
                basis = policy.feed_basis(feed_name)
                rows.append(PathBasis(policy.consumer, f"feed:{feed_name}", WHOLE_FEED, str(in_home.consent), basis))
                continue
            excluded = set(grant.exclude.get(in_home.by, []))
            for category in in_home.categories:
                basis = None if category in excluded else policy.feed_basis(feed_name, category)
                function = str(in_home.function_of(category) or "")
                rows.append(PathBasis(policy.consumer, f"feed:{feed_name}", category, function, basis))
    for up in upstreams:
        sent_under = policies.get(up.policy_name)
        if sent_under is None:
            continue
        for category, consent_function in sorted(RELAY_IN_HOME.items()):
            wanted = up.categories is None or category in up.categories
            basis = sent_under.relay_basis(category) if wanted else None
            rows.append(PathBasis(sent_under.consumer, f"relay:{up.name}", category, consent_function, basis))
    return sorted(rows, key=lambda r: (r.consumer, r.path, r.category))
