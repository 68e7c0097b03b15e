"""Sealing a value to a consumer's X25519 public key: RFC 9180 HPKE, mode base,
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.

Entitled re-identification without a lookup table: only the consumer's private key opens
a sealed value, and the hub keeps nothing that maps tokens back to people.

Format: `nhs2.<key id>.<base64url(enc ‖ ciphertext)>` (unpadded base64url; enc is the
32-byte ephemeral X25519 public key, ciphertext includes the 16-byte GCM tag). The HPKE
`info` binds what the value is and who it is for, so a sealed plate cannot be passed off
as another field, feed or consumer; the AEAD's aad is empty (so `cryptography`'s public
`hpke.Suite.decrypt(enc ‖ ct, key, info)` opens it, as any RFC 9180 library does):

    info = UTF-8 of "neuron-hub/seal/v2" US consumer US feed US field US key_id   (US = 0x1f)

Sealing is deterministic on purpose: the ephemeral key is RFC 9180 DeriveKeyPair(ikm) with
ikm = HMAC-SHA256(hub key for this consumer, info ‖ 0x00 ‖ value), so a re-run of the same
batch gives the same bytes (the publisher's "same input, same partition" rule). What that
reveals is only that two sealed values are equal, which the recipient, who can open them,
learns anyway. Each ephemeral key gives its own HPKE context, used for one message only.

`nhs1` (the hub's own ECIES before HPKE) is no longer produced or opened; docs/consumers.md
says how data sealed that way is republished.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from kernel.errors import IntegrityError
from privacy.hpke import AEAD_AES_256_GCM, ikm_for, seal_base
from privacy.keys import b64u, b64u_decode

PREFIX = "nhs2"
INFO_LABEL = "neuron-hub/seal/v2"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
# The relay's alarm messages are no feed; they seal under the feed their alarms are published
# in, so public security sees the same token for a room in a message and in the feed.
RELAY_FEED = "safety.alarms"
_ENC, _TAG = 32, 16


@dataclass(frozen=True)
class Recipient:
    """A consumer's encryption key: what values are sealed to."""

    consumer: str
    key_id: str
    public_key: X25519PublicKey

    @property
    def raw(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal_info(consumer: str, feed: str, field: str, key_id: str) -> bytes:
    """The HPKE info of a sealed value: what it is and for whom."""
    parts = (INFO_LABEL, consumer, feed, field, key_id)
    if any("\x1f" in p for p in parts):
        raise ValueError("a consumer, feed, field or key id contains the separator 0x1f")
    return "\x1f".join(parts).encode()


def seal(value: str, recipient: Recipient, hub_key: bytes, context: str, *, feed: str) -> str:
    """`value` sealed to `recipient`; `context` is the field it is a value of, `feed` its feed."""
    info = seal_info(recipient.consumer, feed, context, recipient.key_id)
    ikm = ikm_for(hub_key, info + b"\x00" + value.encode())
    sealed = seal_base(recipient.public_key, info, b"", value.encode(), ikm, AEAD_AES_256_GCM)
    return f"{PREFIX}.{recipient.key_id}.{b64u(sealed)}"


def seal_column(
    column: pa.Array | pa.ChunkedArray, recipient: Recipient, hub_key: bytes, context: str, *, feed: str
) -> pa.Array:
    """Seal every value of a string column (once per distinct value); nulls stay null."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column.cast(pa.string()))
    raw = recipient.raw
    sealed = [
        None if v is None else _remembered_seal(v, recipient.consumer, recipient.key_id, raw, hub_key, context, feed)
        for v in encoded.dictionary.to_pylist()
    ]
    return pc.take(pa.array(sealed, pa.string()), encoded.indices)


# Sealing is deterministic (above), so a value sealed once seals to the same string again: a worker
# keeps the most recent ones, as the same plates pass the gates hour after hour and each seal is
# ~140 us of public-key work (bench seal). The key includes the recipient's key and the hub key,
# so a rotated key never hits an old entry; entries live in this process's memory only.
SEAL_MEMO_SIZE = 65_536


@lru_cache(maxsize=SEAL_MEMO_SIZE)
def _remembered_seal(
    value: str, consumer: str, key_id: str, public_raw: bytes, hub_key: bytes, context: str, feed: str
) -> str:
    recipient = Recipient(consumer, key_id, X25519PublicKey.from_public_bytes(public_raw))
    return seal(value, recipient, hub_key, context, feed=feed)


def sealed_key_id(token: str) -> str:
    """The id of the key a sealed value was sealed to."""
    prefix, key_id, _ = [*token.split(".", 2), "", ""][:3]
    if prefix != PREFIX:
        raise IntegrityError("not a sealed value")
    return key_id


def open_sealed(token: str, private_key: X25519PrivateKey, context: str, *, consumer: str, feed: str) -> str:
    """Open a sealed value with the consumer's private key; IntegrityError if it does not open."""
    try:
        prefix, key_id, body = token.split(".", 2)
        blob = b64u_decode(body)
    except ValueError as exc:  # binascii.Error too
        raise IntegrityError("not a sealed value") from exc
    # Only the canonical encoding: otherwise unused bits of the last character make one value many strings.
    if prefix != PREFIX or len(blob) < _ENC + _TAG or b64u(blob) != body:
        raise IntegrityError("not a sealed value")
    try:
        plain = SUITE.decrypt(blob, private_key, info=seal_info(consumer, feed, context, key_id))
    except (InvalidTag, ValueError) as exc:  # ValueError: a low-order ephemeral point
        raise IntegrityError("sealed value does not open with this key") from exc
    return plain.decode()
