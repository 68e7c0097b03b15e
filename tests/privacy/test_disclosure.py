"""Disclosure control per consumer, across feeds and versions (issue 16, item 4): a release
built to leak is blocked, and the shipped policies pass."""

from __future__ import annotations

import pyarrow as pa
import pytest

from kernel.errors import PublishBlocked
from kernel.settings import REPO_ROOT
from privacy.disclosure import check_across_feeds, check_across_versions, recoverable_elsewhere
from privacy.policy import FeedGrant, Policy, load_policies
from schemas.feeds import load_feeds

FEEDS = load_feeds()
POLICIES = load_policies(REPO_ROOT / "config" / "policies")
CARE = FEEDS["care.elderly_daily"]


def care_view(falls: list[int | None]) -> pa.Table:
    n = len(falls)
    return pa.table(
        {"community_id": ["music-square"] * n, "day": [f"2026-11-{20 + i}" for i in range(n)], "falls": falls},
        schema=pa.schema([("community_id", pa.string()), ("day", pa.string()), ("falls", pa.int64())]),
    )


def leaky(policy: Policy) -> Policy:
    """The district's policy as it was: every alarm row, the wristbands' falls included."""
    alarms = policy.feeds["safety.alarms"]
    feeds = {**policy.feeds, "safety.alarms": FeedGrant(fields=alarms.fields, k=alarms.k, exclude={})}
    return policy.model_copy(update={"feeds": feeds})


def test_the_shipped_policies_disclose_nothing_the_care_feed_suppresses() -> None:
    for policy in POLICIES.values():
        if policy.grants(CARE.name):
            assert recoverable_elsewhere(CARE, policy) == []
            check_across_feeds(CARE, policy, care_view([None, 6]))  # does not raise


def test_a_release_built_to_leak_is_blocked() -> None:
    district = leaky(POLICIES["district"])
    assert recoverable_elsewhere(CARE, district)
    with pytest.raises(PublishBlocked, match=r"countable from safety\.alarms"):
        check_across_feeds(CARE, district, care_view([None, 6]))
    check_across_feeds(CARE, district, care_view([7, 6]))  # nothing suppressed: nothing to recover


@pytest.mark.parametrize(
    ("before", "after", "blocked"),
    [(7, 9, True), (7, 12, False), (None, 6, True), (6, None, True), (7, 7, False), (None, None, False)],
)
def test_a_new_version_must_not_disclose_a_small_difference(
    before: int | None, after: int | None, blocked: bool
) -> None:
    district = POLICIES["district"]
    call = lambda: check_across_versions(CARE, district, care_view([after]), [care_view([before])], 5)  # noqa: E731
    if blocked:
        with pytest.raises(PublishBlocked, match="fewer than 5"):
            call()
    else:
        call()
