"""The roster of known residents' names, for the free-text scrubber.

Names are direct identifiers, so the roster is kept like the raw vault: encrypted at rest
(AES-256-GCM under a key derived from the master secret) in the state folder, written by
the platform's connector when residents change, read by de-identification.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

import pyarrow as pa

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


# The streams that register people, and the column holding each one's name. Households and
# volunteer sign-ups carry no names on this platform (a volunteer is a resident_id), so the
# residents' register is the roster's only source today; a stream added here feeds it too.
ROSTER_SOURCES: dict[str, str] = {"platform_residents": "name"}


def update_roster(settings: Settings, keys: HubKeys, stream: str, *tables: pa.Table) -> int | None:
    """Add the names a registering stream's batch (good and rejected rows) carries to the roster.

    Called by validation while the batch's raw values exist (the only moment they do outside
    the vault). Names are added, never removed: a resident who moved out is still named in
    old circle posts, and hiding a name costs nothing. Returns the roster's size, or None for
    a stream that registers nobody.
    """
    column = ROSTER_SOURCES.get(stream)
    if column is None:
        return None
    # Rejected rows too: a resident whose row failed a check (a mistyped phone) has a name all the same.
    names = {n for t in tables if column in t.column_names for n in t.column(column).to_pylist() if isinstance(n, str)}
    known = load_roster(settings, keys)
    if names <= known:
        return len(known)
    return save_roster(settings, keys, known | names)
