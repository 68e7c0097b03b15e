"""What `neuron keys show|rotate|resign` and `neuron retention run` do, as plain functions the
command line wires up: they return what to print, and never a secret."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kernel.errors import NotInitialised
from kernel.settings import Settings
from privacy.keys import HubKeys, jwk_thumbprint, rotate_signing_key
from privacy.master import list_master_versions, rotate_master_secret
from privacy.tls import jwks_fingerprint
from warehouse.audit import append_audit
from warehouse.control import session_scope
from warehouse.manifests import resign_manifests
from warehouse.retention import run_retention


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def keys_show(settings: Settings) -> dict[str, Any]:
    """The public JWKS, each signing key's periods, and the master-secret versions (no secrets)."""
    keys = HubKeys.load(settings)
    active = keys.active_signing_key.kid
    jwks = keys.jwks()
    return {
        "jwks": jwks,
        # What consumers pin (`neuron pull --jwks-fingerprint`): never trust keys on first use.
        "jwks_fingerprint": jwks_fingerprint(jwks),
        # What consumers pin (RFC 7638): give them with the JWKS, out of band (docs/consumers.md).
        "thumbprints": {str(k["kid"]): jwk_thumbprint(k) for k in jwks["keys"]},
        "signing_keys": [
            {
                "kid": k.kid,
                "created": _iso(k.created),
                "signs_until": _iso(k.signs_until),
                "listed_until": _iso(k.listed_until(keys.signature_lifetime)),
                "active": k.kid == active,
            }
            for k in keys.signing_keys
        ],
        "master_secret_versions": [
            {"version": v.version, "created": _iso(v.created), "active": v.active}
            for v in list_master_versions(settings)
        ],
    }


def keys_rotate(settings: Settings, master_secret: bool = False) -> dict[str, Any]:
    """Rotate the signing key (older ones stay in the JWKS) and, if asked, the master secret.

    Each rotation is an audit entry. A new master secret changes every pseudonym from the
    next batch on: rotate it at the turn of a pseudonym epoch. Every partition's manifest is
    then re-signed with the new key (`keys_resign`), so a consumer verifying with the current
    JWKS verifies everything after the retired key has left it.
    """
    now = datetime.now(UTC)
    key = rotate_signing_key(settings, now)
    done: dict[str, Any] = {"signing_key": key.kid, "valid_until": _iso(key.not_after)}
    if master_secret:
        done["master_secret_version"] = rotate_master_secret(settings, now)
    with session_scope(settings.control_url) as session:
        append_audit(session, actor="hub", action="keys", outcome="rotated", detail=done, at=now)
    done["manifests_resigned"] = keys_resign(settings)["resigned"]
    return done


def keys_resign(settings: Settings) -> dict[str, Any]:
    """Re-sign with the active key every manifest another key signed (idempotent; audited).

    Rotation runs it; run it again after a publish that raced a rotation, or to finish one
    that was interrupted.
    """
    done = resign_manifests(settings)
    return {"signing_key": done.signing_key, "resigned": done.resigned, "already_current": done.current}


def retention_run(settings: Settings) -> dict[str, Any]:
    """Purge what has outlived its retention; counts of what went."""
    return run_retention(settings).summary()


def ensure_initialised(settings: Settings) -> None:
    """Refuse, in one line, to work on a hub that `neuron init` has not made (before anything
    opens, and so creates, its databases)."""
    from warehouse.migrations import is_current

    where = f"the hub at {settings.home}"
    if not (settings.keys_dir / "signing" / "index.json").is_file():
        raise NotInitialised(f"{where} has no keys yet: run `neuron init` (with NEURON_HOME={settings.home})")
    if not is_current(settings.control_url):
        raise NotInitialised(
            f"{where}: its control database is missing or not at the latest version: run `neuron init`"
        )
