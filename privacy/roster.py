"""The roster of known residents' names, for the free-text scrubber.

Names are direct identifiers, so the roster is kept like the raw vault: encrypted at rest
(AES-256-GCM under a key derived from the master secret) in the state folder, written by
the platform's connector when residents change, read by de-identification.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

from kernel.settings import Settings
from privacy.keys import HubKeys

AAD = b"neuron-hub/roster/v1"


def save_roster(settings: Settings, keys: HubKeys, names: Iterable[str]) -> int:
    """Replace the roster with `names` (encrypted, atomically); returns how many names it holds."""
    body = json.dumps(sorted({n.strip() for n in names if n.strip()}), ensure_ascii=False).encode()
    blob = keys.encrypt_at_rest("roster", body, AAD)
    path = settings.state_path / "roster.enc"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)
    return len(json.loads(body))


def load_roster(settings: Settings, keys: HubKeys) -> frozenset[str]:
    """The roster's names (empty when the platform has not sent one yet)."""
    path = settings.state_path / "roster.enc"
    if not path.exists():
        return frozenset()
    body = keys.decrypt_at_rest("roster", path.read_bytes(), AAD, what=f"{path}: the roster")
    return frozenset(json.loads(body))
