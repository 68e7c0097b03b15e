"""Sharing policies: loaded and checked at start, with errors that name file and line;
fingerprinted; the catalog's PIPL Art. 73 classification."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.errors import ConfigError
from kernel.settings import REPO_ROOT
from privacy.policy import load_policies, load_policy_file, pipl_art73
from schemas.feeds import load_feeds

GOOD = """\
consumer: test
version: 1
title: a test consumer
legal_basis: test
retention_days: 30
feeds:
  traffic.vehicle_passes:
    fields:
      day: keep
      pass_time: {op: generalise, to: hour}
      plate_no: pseudonymise
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "test.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("traffic.vehicle_passes:", "traffic.no_such_feed:", 7, "unknown feed 'traffic.no_such_feed'"),
        ("      day: keep", "      weekday: keep", 9, "has no field 'weekday'"),
        ("plate_no: pseudonymise", "plate_no: shred", 11, "unknown operator 'shred'"),
        ("plate_no: pseudonymise", "plate_no: keep", 11, "direct identifier"),  # raw tokens never leave
        ("{op: generalise, to: hour}", "{op: generalise, to: street}", 10, "pass_time"),
        ("{op: generalise, to: hour}", "{op: mask, keep_start: 2}", 10, "string"),  # mask on a timestamp
        ("retention_days: 30", "retention_days: 0", 5, "retention_days"),
        ("title: a test consumer", "title: a test consumer\nshare_everything: true", 4, "share_everything"),
    ],
)
def test_a_bad_policy_fails_loudly_naming_file_and_line(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError, match=message) as failed:
        load_policy_file(path)
    assert str(failed.value).startswith(f"{path}:{line}:")


def test_counts_under_k_must_be_aggregated(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  traffic.vehicle_passes:\n    fields:\n      day: keep\n      pass_time: {op: generalise, to: hour}\n"
        "      plate_no: pseudonymise\n",
        "  traffic.vehicle_flow_hourly:\n    k: 5\n    fields:\n      day: keep\n      entries: keep\n",
    )
    with pytest.raises(ConfigError, match="under k, counts need aggregate") as failed:
        load_policy_file(write(tmp_path, text))
    assert ":11:" in str(failed.value)


def test_the_fingerprint_follows_what_the_policy_says_not_its_layout(tmp_path: Path) -> None:
    first = load_policy_file(write(tmp_path, GOOD)).fingerprint
    reflowed = GOOD.replace("legal_basis: test", "legal_basis:   'test'  # same words") + "\n\n"
    assert load_policy_file(write(tmp_path, reflowed)).fingerprint == first
    changed = GOOD.replace("to: hour", "to: day")
    assert load_policy_file(write(tmp_path, changed)).fingerprint != first


def test_the_three_consumers_policies_load_and_grant_what_the_design_says() -> None:
    policies = load_policies(REPO_ROOT / "config" / "policies")
    feeds = load_feeds()
    grants = {name: sorted(p.feeds) for name, p in policies.items()}
    assert grants == {
        "district": [
            "access.entries_daily",
            "care.elderly_daily",
            "community.volunteers_monthly",
            "env.air_quality_hourly",
            "governance.votes",
            "infra.assets_status",
            "safety.alarms",
            "services.fees_monthly",
            "services.repairs",
            "traffic.vehicle_flow_hourly",
        ],
        "open_data": [
            "env.air_quality_hourly",
            "governance.votes",
            "infra.assets_status",
            "traffic.vehicle_flow_hourly",
        ],
        "public_security": [
            "access.entries_daily",
            "safety.alarms",
            "traffic.vehicle_flow_hourly",
            "traffic.vehicle_passes",
        ],
    }
    police = policies["public_security"]
    assert police.treatment("traffic.vehicle_passes", "plate_no") == {"op": "seal_to"}
    assert policies["open_data"].feeds["traffic.vehicle_flow_hourly"].k == 5
    flow, passes = feeds["traffic.vehicle_flow_hourly"], feeds["traffic.vehicle_passes"]
    assert pipl_art73(flow, policies["open_data"]) == "anonymised"  # counts under k
    assert pipl_art73(flow, policies["district"]) == "de-identified"  # small cells unsuppressed
    assert pipl_art73(passes, police) == "de-identified"  # entitled to open the plate
    assert len({p.fingerprint for p in policies.values()}) == 3
