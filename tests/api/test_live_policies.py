"""Issue 16, item 6: the API applies the policy in force on every request. A removed policy
file withdraws its consumer's grants within seconds (no restart), audited with the new
fingerprints; a stricter treatment of a field (same column) withholds the partitions
published under the old one until they are republished."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import quote

import requests
import yaml
from sqlalchemy import select

from tests.api.hub import LiveHub, send
from tests.api.lake import FEED
from warehouse.control import session_scope
from warehouse.models import AuditEntry

PATIENCE_SECONDS = 20  # the API looks at the folder once a second; this only bounds a failing test


def _eventually(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return False


def _feed(hub: LiveHub, consumer: str) -> requests.Response:
    return send(hub.signed(f"/v1/feeds/{quote(FEED, safe='')}", hub.identities[consumer]))


def _records(hub: LiveHub, consumer: str) -> list[dict[str, object]]:
    with hub.client(consumer) as client:
        rows, _ = client.records_ndjson(FEED, limit=50)
    return rows


def test_a_removed_policy_file_refuses_its_consumer_within_seconds(fresh_hub: LiveHub) -> None:
    assert _feed(fresh_hub, "district").status_code == 200
    (fresh_hub.settings.policies_dir / "district.yaml").unlink()
    assert _eventually(lambda: _feed(fresh_hub, "district").status_code == 404)
    assert _feed(fresh_hub, "public_security").status_code == 200  # the others keep their grants
    with session_scope(fresh_hub.settings.control_url) as session:
        reloads = session.scalars(select(AuditEntry).where(AuditEntry.action == "policies_reload")).all()
        details: list[dict[str, Any]] = [json.loads(e.detail or "{}") for e in reloads]
    assert [d["changed"] for d in details] == [["district"]]
    assert "district" not in details[0]["fingerprints"] and "public_security" in details[0]["fingerprints"]


def test_a_stricter_treatment_withholds_what_the_old_one_published_until_republished(fresh_hub: LiveHub) -> None:
    before = _records(fresh_hub, "district")
    assert before and all(len(str(r["gate_code"])) > 1 for r in before)
    path = fresh_hub.settings.policies_dir / "district.yaml"
    policy = yaml.safe_load(path.read_text(encoding="utf-8"))
    policy["version"] = 2
    policy["feeds"][FEED]["fields"]["gate_code"] = {"op": "mask", "keep_start": 1}  # the same column, stricter
    path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    assert _eventually(lambda: _records(fresh_hub, "district") == [])
    assert _records(fresh_hub, "public_security")  # its treatment did not change
    # Republished under the new treatment, the days are served again.
    for day, version in ((20, 3), (21, 2), (22, 2)):
        fresh_hub.publish("district", date(2026, 11, day), version, 4)
    assert len(_records(fresh_hub, "district")) == 12
