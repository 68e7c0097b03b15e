"""Versions of the hub's master secret: which exist, which one is active, and rotation.

Version 1 is `<state>/keys/master.key` (or NEURON_MASTER_SECRET); later versions are
`master-v<N>.key` beside it, and `master.json` names the active one. Old versions stay
until nothing they protect is left (vault objects record the version that wrapped them),
so rotation never strands data. Secrets are files readable by their owner only.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kernel.errors import ConfigError, NotInitialised
from kernel.settings import Settings


@dataclass(frozen=True)
class MasterVersion:
    """One version of the master secret (the secret itself is never part of a listing)."""

    version: int
    created: datetime | None
    active: bool


def write_secret(path: Path, data: bytes) -> None:
    """Create a file readable by its owner only; never overwrite an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _secret_path(settings: Settings, version: int) -> Path:
    return settings.keys_dir / ("master.key" if version == 1 else f"master-v{version}.key")


def _index(settings: Settings) -> tuple[dict[int, str | None], int]:
    """(version → creation time, active version); a hub that never rotated has version 1 only."""
    path = settings.keys_dir / "master.json"
    if not path.exists():
        return {1: None}, 1
    data = json.loads(path.read_text())
    return {int(v): info.get("created") for v, info in data["versions"].items()}, int(data["active"])


def _write_index(settings: Settings, versions: dict[int, str | None], active: int) -> None:
    body = {"active": active, "versions": {str(v): {"created": c} for v, c in sorted(versions.items())}}
    tmp = settings.keys_dir / "master.json.tmp"
    tmp.write_text(json.dumps(body, indent=2))
    os.replace(tmp, settings.keys_dir / "master.json")


def _read_secret(path: Path) -> bytes:
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} is readable by others: chmod 600 it")
    return base64.b64decode(path.read_bytes())


def load_master_secrets(settings: Settings) -> tuple[dict[int, bytes], int]:
    """Every master-secret version and the active version number."""
    if settings.master_secret is not None:
        return {1: base64.b64decode(settings.master_secret.get_secret_value())}, 1
    if not _secret_path(settings, 1).exists():
        path = _secret_path(settings, 1)
        raise NotInitialised(f"no master secret at {path} (or NEURON_MASTER_SECRET): run `neuron init`")
    versions, active = _index(settings)
    return {v: _read_secret(_secret_path(settings, v)) for v in sorted(versions)}, active


def list_master_versions(settings: Settings) -> list[MasterVersion]:
    """The versions of the master secret, oldest first, without their secrets."""
    if settings.master_secret is not None:
        return [MasterVersion(1, None, True)]
    versions, active = _index(settings)
    return [
        MasterVersion(v, datetime.fromisoformat(created) if created else None, v == active)
        for v, created in sorted(versions.items())
    ]


def rotate_master_secret(settings: Settings, now: datetime | None = None) -> int:
    """Create a new master-secret version and make it active; returns its number.

    Keys derived from it differ from the old version's: staging pseudonyms and consumers'
    pseudonyms change from the next batch on, so rotate at an epoch boundary.
    """
    if settings.master_secret is not None:
        raise ConfigError("the master secret comes from NEURON_MASTER_SECRET: rotate it where it is set")
    load_master_secrets(settings)  # refuses to rotate a hub that was never initialised
    versions, _active = _index(settings)
    version = max(versions) + 1
    write_secret(_secret_path(settings, version), base64.b64encode(os.urandom(32)))
    versions[version] = (now or datetime.now(UTC)).isoformat()
    _write_index(settings, versions, version)
    return version
