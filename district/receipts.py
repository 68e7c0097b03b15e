"""Receipts: what the district holds of one hub, signed with the district's receipt key, for the
community's console to show ("the district has received these versions").

A receipt is a compact JWS (Ed25519, `typ` JOSE, the district's `kid`) over canonical JSON:

    {"typ": "neuron-district-receipt", "district": "putuo", "hub": "music-square",
     "issued_at": "2026-11-21T02:00:00+00:00",
     "feeds": {"env.air_quality_hourly": {"snapshot_id": 123,
                 "partitions": [{"partition": "community_id=music-square/day=2026-11-20",
                                 "version": 2, "sha256": "…"}]}}}

Each partition is listed at the newest version the district's table holds (a superseded
version is gone from the table, so from the receipt). The files are written to
`<home>/receipts/<hub>.jws`; the console checks one with the district's JWKS
(`neuron district keys`), e.g. `privacy.jws.verify_json(token, jwks)`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from district.config import DistrictSettings
from district.keys import load_key, receipt_kid
from district.lake import Lake, ledger
from privacy.jws import sign_json, verify_json
from privacy.keys import SigningKey

TYPE = "neuron-district-receipt"


def _holdings(settings: DistrictSettings, lake: Lake) -> dict[str, dict[str, Any]]:
    """hub → feed → {snapshot_id, partitions}: every table's ledger read once."""
    holdings: dict[str, dict[str, Any]] = {}
    for feed, name in sorted(lake.feeds().items()):
        table = lake.catalog.load_table(f"{settings.namespace}.{name}")
        snapshot = table.current_snapshot()
        for (hub, key), held in sorted(ledger(table).items()):
            entry = holdings.setdefault(hub, {}).setdefault(
                feed, {"snapshot_id": snapshot.snapshot_id if snapshot else None, "partitions": []}
            )
            entry["partitions"].append({"partition": key, "version": held.version, "sha256": held.sha256})
    return holdings


def receipt_payload(
    settings: DistrictSettings, hub: str, feeds: dict[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """What the district holds of one hub, feed by feed."""
    issued = (now or datetime.now(UTC)).isoformat()
    return {"typ": TYPE, "district": settings.name, "hub": hub, "issued_at": issued, "feeds": feeds}


def receipt_for(settings: DistrictSettings, lake: Lake, hub: str) -> str:
    """One hub's signed receipt."""
    return sign_receipt(settings, receipt_payload(settings, hub, _holdings(settings, lake).get(hub, {})))


def sign_receipt(settings: DistrictSettings, payload: dict[str, Any]) -> str:
    """The receipt as a compact JWS with the district's receipt key."""
    private = load_key(settings.resolve(settings.receipt_key_file))
    now = datetime.now(UTC)
    key = SigningKey(receipt_kid(private, settings.name), private, now, now + timedelta(days=1))
    return sign_json(payload, key)


def write_receipts(settings: DistrictSettings, lake: Lake, hubs: list[str] | None = None) -> list[Path]:
    """Sign and write a receipt per hub (all configured hubs by default); the files written."""
    folder = settings.home_path / "receipts"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    holdings = _holdings(settings, lake)
    for hub in hubs or [h.community_id for h in settings.hubs]:
        path = folder / f"{hub}.jws"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(sign_receipt(settings, receipt_payload(settings, hub, holdings.get(hub, {}))))
        tmp.replace(path)
        written.append(path)
    return written


def verify_receipt(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """A receipt's payload, once its signature verifies against the district's JWKS (IntegrityError else)."""
    from kernel.errors import IntegrityError

    payload = verify_json(token, jwks)
    if payload.get("typ") != TYPE:
        raise IntegrityError("the token is not a district receipt")
    return payload
