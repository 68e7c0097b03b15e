"""Sealing a source's raw file at rest (a dropped vendor export kept for re-runs).

AES-256-GCM under a key derived from the master secret for this purpose; the label (the
source and the file's SHA-256) is authenticated data, so a sealed file cannot stand in for
another. Pure: the caller reads and writes the bytes.
"""

from __future__ import annotations

from privacy.keys import HubKeys

MAGIC = b"NEURONSEALED1\n"
PURPOSE = "drop-file"


class FileSealer:
    """Seals and opens raw files with the hub's keys."""

    def __init__(self, keys: HubKeys):
        self.keys = keys

    def seal(self, data: bytes, label: str) -> bytes:
        return MAGIC + self.keys.encrypt_at_rest(PURPOSE, data, label.encode())

    def open(self, blob: bytes, label: str) -> bytes:
        return self.keys.decrypt_at_rest(
            PURPOSE, blob.removeprefix(MAGIC), label.encode(), what=f"sealed file {label.split('/')[0]}"
        )
