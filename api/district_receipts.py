"""The hub's side of the district's receipts: check a receipt the district signed (district/
receipts.py: a compact JWS over what the district holds of this hub) against the district's
JWKS, and compare it with what the hub published for that consumer.

The console (or `neuron consumers receipt`) shows the answer: which partition versions the
district holds, which newest ones it lacks, and any it holds with other bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from kernel.errors import IntegrityError
from kernel.settings import Settings
from privacy.jws import verify_json
from warehouse.control import session_scope
from warehouse.models import Partition

RECEIPT_TYPE = "neuron-district-receipt"


@dataclass
class ReceiptCheck:
    """A verified receipt set against the hub's publications for the consumer."""

    district: str
    issued_at: str
    held: int = 0  # newest versions the district holds with the published bytes
    behind: list[str] = field(default_factory=list)  # "<feed> <partition> v<newest>": not (yet) held
    mismatched: list[str] = field(default_factory=list)  # held with a SHA-256 the hub never published


def check_receipt(settings: Settings, token: str, district_jwks: dict[str, Any], consumer: str) -> ReceiptCheck:
    """Verify the receipt's signature, then compare it with the consumer's newest published versions."""
    payload = verify_json(token, district_jwks)
    if payload.get("typ") != RECEIPT_TYPE or payload.get("hub") != settings.community_id:
        raise IntegrityError("the token is not a district receipt for this community")
    claimed: dict[tuple[str, str], tuple[int, str]] = {}
    for feed, entry in (payload.get("feeds") or {}).items():
        for item in entry.get("partitions", []):
            claimed[(str(feed), str(item["partition"]))] = (int(item["version"]), str(item["sha256"]))
    result = ReceiptCheck(str(payload.get("district")), str(payload.get("issued_at")))
    newest = (
        select(Partition.feed, Partition.partition_key, func.max(Partition.version))
        .where(Partition.consumer == consumer)
        .group_by(Partition.feed, Partition.partition_key)
    )
    with session_scope(settings.control_url) as session:
        published = {
            (p.feed, p.partition_key, p.version): p.sha256
            for p in session.scalars(select(Partition).where(Partition.consumer == consumer))
        }
        for feed, key, version in session.execute(newest).all():
            held = claimed.get((feed, key))
            if held is None or held[0] < version:
                result.behind.append(f"{feed} {key} v{version}")
            elif published.get((feed, key, held[0])) != held[1]:
                result.mismatched.append(f"{feed} {key} v{held[0]}")
            else:
                result.held += 1
    return result
