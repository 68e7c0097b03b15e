"""Opaque partition ids: a publication's seq, bound to the consumer it was published for.

An id is base64url(seq as 8 bytes ‖ the first 12 bytes of HMAC-SHA256(key, consumer ‖ seq)),
with the key derived from the master secret. Another consumer's id (or a guessed seq)
does not decode for the caller, so it answers the same 404 as a partition that does not
exist: ids cannot be enumerated or borrowed (OWASP API1).
"""

from __future__ import annotations

import hashlib
import hmac

from privacy.keys import HubKeys, b64u, b64u_decode

PURPOSE = "api-partition-id"
TAG_BYTES = 12
ID_LENGTH = 27  # base64url of 20 bytes, unpadded


class PartitionIds:
    """Encodes and checks the ids of one hub."""

    def __init__(self, keys: HubKeys) -> None:
        self._key = keys.derive(PURPOSE)

    def _tag(self, consumer: str, seq: int) -> bytes:
        message = consumer.encode() + b"\x1f" + seq.to_bytes(8, "big")
        return hmac.digest(self._key, message, hashlib.sha256)[:TAG_BYTES]

    def encode(self, consumer: str, seq: int) -> str:
        """The id under which `consumer` downloads publication `seq`."""
        return b64u(seq.to_bytes(8, "big") + self._tag(consumer, seq))

    def decode(self, consumer: str, partition_id: str) -> int | None:
        """The seq behind an id issued to `consumer`; None for anything else."""
        if len(partition_id) != ID_LENGTH:
            return None
        try:
            raw = b64u_decode(partition_id)
        except ValueError:
            return None
        if len(raw) != 8 + TAG_BYTES or b64u(raw) != partition_id:
            return None
        seq = int.from_bytes(raw[:8], "big")
        return seq if hmac.compare_digest(raw[8:], self._tag(consumer, seq)) else None
