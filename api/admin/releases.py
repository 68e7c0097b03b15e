"""Two views of what was released, for the console: the de-identification report of every
release (issue 16, item 5: privacy.deid_report, signed into each partition's manifest), and
the district's signed receipts of what it holds (issue 21: api.district_receipts).

The reports are read out of the manifests the control database keeps (`Partition.manifest_jws`,
the JWS the consumer receives); the hub's own signature over them is checked against the
hub's JWKS before anything is shown, so the console shows what was signed, not a copy.

Receipts reach the hub out of band (the district writes `<district home>/receipts/<hub>.jws`);
`neuron consumers receipt` keeps each one it checked under `<state>/receipts/<consumer>.jws`
with the district's JWKS beside it (`<consumer>.jwks.json`), and the console verifies them
again on every view.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from kernel.errors import IntegrityError, NeuronError
from kernel.settings import Settings
from privacy.jws import verify_json
from warehouse.control import session_scope
from warehouse.models import Partition

log = logging.getLogger(__name__)
REPORT_PAGE = 200
RECEIPT_TYPE = "neuron-district-receipt"


@dataclass
class Release:
    """One partition version released to one consumer, with its de-identification report."""

    seq: int
    consumer: str
    feed: str
    partition: str
    version: int
    rows: int
    published_at: Any
    signed: bool | None  # the manifest's signature verified against the hub's JWKS (None: no JWKS)
    report: dict[str, Any] | None


def _payload(token: str) -> dict[str, Any]:
    """A compact JWS's payload, unverified (the caller verifies when it can)."""
    part = token.split(".")[1]
    found = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return found if isinstance(found, dict) else {}


def _hub_jwks(settings: Settings) -> dict[str, Any] | None:
    try:
        from privacy.keys import HubKeys

        jwks: dict[str, Any] = HubKeys.load(settings).jwks()
        return jwks
    except (NeuronError, OSError, ValueError, ImportError, AttributeError) as exc:
        log.warning("hub JWKS not available for the report page (%s)", type(exc).__name__)
        return None


def releases(
    settings: Settings, feed: str | None = None, consumer: str | None = None, limit: int = REPORT_PAGE
) -> list[Release]:
    """The newest releases (partition versions), newest first, each with its signed report."""
    query = select(Partition).order_by(Partition.seq.desc()).limit(limit)
    if feed:
        query = query.where(Partition.feed == feed)
    if consumer:
        query = query.where(Partition.consumer == consumer)
    jwks = _hub_jwks(settings)
    found: list[Release] = []
    with session_scope(settings.control_url) as session:
        for p in session.execute(query).scalars():
            signed: bool | None = None
            try:
                payload = verify_json(p.manifest_jws, jwks) if jwks else _payload(p.manifest_jws)
                signed = True if jwks else None
            except IntegrityError:
                payload, signed = _payload(p.manifest_jws), False
            except (ValueError, IndexError):
                payload, signed = {}, False
            report = payload.get("deidentification")
            found.append(
                Release(
                    seq=p.seq,
                    consumer=p.consumer,
                    feed=p.feed,
                    partition=p.partition_key,
                    version=p.version,
                    rows=int(p.rows),
                    published_at=p.published_at,
                    signed=signed,
                    report=report if isinstance(report, dict) else None,
                )
            )
    return found


@dataclass
class HeldPartition:
    """One partition of a feed: the newest version published, the one the district holds."""

    feed: str
    partition: str
    published: int
    held: int | None
    status: str  # held | behind | mismatched | not_held


@dataclass
class Receipt:
    """A district's receipt as kept by the hub, verified now, set against what was published."""

    consumer: str
    file: str
    verified: bool
    problem: str | None = None  # unreadable | not_for_this_hub | signature (the console names it)
    district: str | None = None
    issued_at: str | None = None
    partitions: list[HeldPartition] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for p in self.partitions if p.status == status)


def receipts_folder(settings: Settings) -> Path:
    return settings.state_path / "receipts"


def keep_receipt(settings: Settings, consumer: str, token: str, jwks: dict[str, Any]) -> Path:
    """Keep a checked receipt and the district's JWKS for the console (owner-only files)."""
    folder = receipts_folder(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{consumer}.jws"
    for target, text in ((path, token), (folder / f"{consumer}.jwks.json", json.dumps(jwks))):
        temporary = target.with_suffix(target.suffix + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(0o600)
        temporary.replace(target)
    return path


def kept_receipts(settings: Settings) -> list[Receipt]:
    """Every kept receipt, verified against its district JWKS and compared with what was published."""
    folder = receipts_folder(settings)
    if not folder.is_dir():
        return []
    return [_check(settings, path) for path in sorted(folder.glob("*.jws"))]


def _check(settings: Settings, path: Path) -> Receipt:
    consumer = path.name.removesuffix(".jws")
    receipt = Receipt(consumer, path.name, verified=False)
    try:
        jwks = json.loads((path.parent / f"{consumer}.jwks.json").read_text(encoding="utf-8"))
        payload = verify_json(path.read_text(encoding="utf-8").strip(), jwks)
        if payload.get("typ") != RECEIPT_TYPE or payload.get("hub") != settings.community_id:
            receipt.problem = "not_for_this_hub"
            return receipt
    except (OSError, ValueError):
        receipt.problem = "unreadable"
        return receipt
    except IntegrityError:
        receipt.problem = "signature"
        return receipt
    receipt.verified = True
    receipt.district, receipt.issued_at = str(payload.get("district")), str(payload.get("issued_at"))
    claimed: dict[tuple[str, str], tuple[int, str]] = {}
    for feed, entry in (payload.get("feeds") or {}).items():
        for item in (entry or {}).get("partitions", []):
            claimed[(str(feed), str(item["partition"]))] = (int(item["version"]), str(item["sha256"]))
    with session_scope(settings.control_url) as session:
        published: dict[tuple[str, str], dict[int, str]] = {}
        for p in session.scalars(select(Partition).where(Partition.consumer == consumer)):
            published.setdefault((p.feed, p.partition_key), {})[p.version] = p.sha256
    for (feed, key), versions in sorted(published.items()):
        newest = max(versions)
        held = claimed.get((feed, key))
        if held is None:
            status = "not_held"
        elif versions.get(held[0]) != held[1]:
            status = "mismatched"
        else:
            status = "held" if held[0] >= newest else "behind"
        receipt.partitions.append(HeldPartition(feed, key, newest, held[0] if held else None, status))
    return receipt
