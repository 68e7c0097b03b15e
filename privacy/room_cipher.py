"""Rooms kept at rest: a household's room encrypted for the control database.

The relay finds an in-home alarm's room in the platform's register (relay/rooms.py) and keeps
it only in this form; the `alarm_lifecycle` stream opens it on its way into the encrypted raw
landing, where de-identification pseudonymises and seals it like any raw room. AES-256-GCM
under a key derived from the master secret for this community, as the raw vault keeps raw values.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from neuron.errors import IntegrityError
from privacy.keys import HubKeys

PURPOSE = "relay-room"
AAD = b"neuron-hub/relay-room/v1"
PREFIX = "enc:"


class RoomCipher:
    """A room encrypted for the control database: `enc:{master version}:{nonce + ciphertext}`."""

    def __init__(self, keys: HubKeys, community_id: str) -> None:
        self.keys, self.community_id = keys, community_id
        self._ciphers: dict[int, AESGCM] = {}

    def _cipher(self, version: int) -> AESGCM:
        if version not in self._ciphers:
            self._ciphers[version] = AESGCM(self.keys.derive(PURPOSE, self.community_id, version=version))
        return self._ciphers[version]

    def encrypt(self, room: str) -> str:
        nonce = os.urandom(12)
        version = self.keys.master_version
        body = nonce + self._cipher(version).encrypt(nonce, room.encode(), AAD)
        return f"{PREFIX}{version}:{base64.urlsafe_b64encode(body).decode()}"

    def decrypt(self, stored: str | None) -> str | None:
        """The room of a stored value (None stays None)."""
        if stored is None:
            return None
        if not stored.startswith(PREFIX):
            raise IntegrityError("a stored room is not encrypted (refused rather than passed on)")
        version, _, text = stored.removeprefix(PREFIX).partition(":")
        body = base64.urlsafe_b64decode(text)
        try:
            return self._cipher(int(version)).decrypt(body[:12], body[12:], AAD).decode()
        except (InvalidTag, ValueError) as exc:
            raise IntegrityError("a stored room does not decrypt (altered, or another hub's)") from exc
