"""Rooms kept at rest: a household's room encrypted for the control database.

The relay finds an in-home alarm's room in the platform's register (relay/rooms.py) and keeps
it only in this form; the `alarm_lifecycle` stream opens it on its way into the encrypted raw
landing, where de-identification pseudonymises and seals it like any raw room. Encrypted as
the hub keeps its other small secrets at rest (`HubKeys.encrypt_at_rest`), under a key
derived for this community.
"""

from __future__ import annotations

from kernel.errors import IntegrityError
from privacy.keys import HubKeys, b64u, b64u_decode

PURPOSE = "relay-room"
AAD = b"neuron-hub/relay-room/v1"
PREFIX = "enc:"


class RoomCipher:
    """A room encrypted for the control database: `enc:` and the blob in base64url."""

    def __init__(self, keys: HubKeys, community_id: str) -> None:
        self.keys, self.community_id = keys, community_id

    def encrypt(self, room: str) -> str:
        return PREFIX + b64u(self.keys.encrypt_at_rest(PURPOSE, room.encode(), AAD, self.community_id))

    def decrypt(self, stored: str | None) -> str | None:
        """The room of a stored value (None stays None)."""
        if stored is None:
            return None
        if not stored.startswith(PREFIX):
            raise IntegrityError("a stored room is not encrypted (refused rather than passed on)")
        blob = b64u_decode(stored.removeprefix(PREFIX))
        return self.keys.decrypt_at_rest(PURPOSE, blob, AAD, self.community_id, what="a stored room").decode()
