"""Partition manifests re-signed with the hub's active key after a rotation (issue 17).

A manifest is a JWS the publisher signed with the key active at the time. Once that key is
retired it stays in the JWKS only `signature_lifetime_days` (privacy/keys.py); after that a
consumer verifying with the current JWKS could no longer verify the partition. So after each
rotation (`neuron keys rotate`, the rotation DAG) and whenever `neuron keys resign` is run,
every recorded manifest whose signature is by another key is signed again, over the same
payload byte for byte, with the active key: the file in the lake first (atomically), then
its record, in one transaction with an audit entry. The step is idempotent: a re-run, or a
run after a crash half-way, re-signs only what still carries an older key's signature.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass

from sqlalchemy import select

from kernel.errors import IntegrityError
from kernel.settings import Settings
from privacy.jws import sign_json, verify_json
from privacy.keys import HubKeys
from warehouse import lake
from warehouse.audit import append_audit
from warehouse.control import session_scope
from warehouse.models import Partition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resigned:
    signing_key: str
    resigned: int  # manifests signed again with the active key
    current: int  # manifests already signed by it


def signed_by(jws: str) -> str | None:
    """The `kid` in a compact JWS's protected header (None if it has none or is not a JWS)."""
    head = jws.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except ValueError:
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def resign_manifests(settings: Settings, keys: HubKeys | None = None) -> Resigned:
    """Re-sign, with the active key, every recorded manifest signed by another of the hub's keys.

    The old signature is verified first against every key the hub holds, listed or not: a
    record whose manifest does not verify is not re-signed (that would launder an alteration)
    and ends the run with an IntegrityError naming the partition's file.
    """
    keys = keys or HubKeys.load(settings)
    active = keys.active_signing_key
    # Every key the hub still holds, including those the JWKS no longer lists.
    every_key = {"keys": [k.public_jwk(keys.signature_lifetime) for k in keys.signing_keys]}
    resigned = current = 0
    with session_scope(settings.control_url) as session:
        for partition in session.scalars(select(Partition).order_by(Partition.seq)):
            if signed_by(partition.manifest_jws) == active.kid:
                current += 1
                continue
            try:
                payload = verify_json(partition.manifest_jws, every_key)
            except IntegrityError:
                raise IntegrityError(
                    f"the manifest of {partition.path} does not verify with any of the hub's keys: not re-signed"
                ) from None
            jws = sign_json(payload, active)
            manifest = lake.manifest_of(settings.lake_path / partition.path)
            if manifest.exists():  # a partition whose files are gone keeps only its record
                lake.write_hidden(manifest, jws.encode())
                lake.reveal(manifest)
            partition.manifest_jws = jws
            resigned += 1
        if resigned:
            append_audit(
                session,
                actor="hub",
                action="keys",
                outcome="resigned",
                detail={"signing_key": active.kid, "manifests": resigned},
            )
    if resigned:
        log.info("re-signed %d manifests with %s", resigned, active.kid)
    return Resigned(active.kid, resigned, current)
